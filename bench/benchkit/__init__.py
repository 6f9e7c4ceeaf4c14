"""webstack benchmarks on the LXC lab: converge cost, VIP takeover, client-visible loss, LB hop."""
