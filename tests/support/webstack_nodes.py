"""Topology views (``webstack_topology.node`` answers) for the module tests."""


def lb_node(roles=("lb",), vip="10.99.1.100", interface="eth0", priority=200):
    """lb1 of a cluster whose VIP is ``vip`` on ``interface``; ``roles`` as given."""
    return {
        "valid": True,
        "name": "lb1",
        "roles": list(roles),
        "self": {"name": "lb1", "address": "10.99.1.1", "roles": list(roles)},
        "vip": {"address": vip, "prefix": 24, "interface": interface, "router_id": 51},
        "priority": priority,
        "ports": {"app": 80, "mongodb": 27017, "postgresql": 5432},
    }
