"""The webstack lab: the whole stack on one Linux machine as LXC system containers (see lab/README.md)."""
