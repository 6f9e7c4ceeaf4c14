"""The webstack lab: the whole stack on one machine as LXC system containers (lab/README.md)."""
