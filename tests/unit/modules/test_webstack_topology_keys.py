"""A typo is never ignored: an unknown key is an error at every level of the topology and of the
secrets, with the closest known key (``did you mean``), and a malformed structure is an error
naming its key, never a traceback."""

import pytest
from support.salt_modules import load
from support.state_tree import make_topology

problems = load("_utils", "webstack_topology").problems


def add(*path, key):
    """A change that adds ``key: 1`` to the mapping at ``path``."""

    def change(topology):
        where = topology
        for part in path:
            where = where.setdefault(part, {}) if isinstance(part, str) else where[part]
        where[key] = 1

    return change


#: (change, expected error), one per level of the topology.
TYPOS = {
    "top-level": (add(key="nodse"), "nodse: unknown top-level key, did you mean 'nodes'?"),
    "master": (add("master", key="adress"), "master.adress: unknown key, did you mean 'address'?"),
    # The probe: network.gatway was ignored (and the gateway silently unset).
    "network": (
        add("network", key="gatway"),
        "network.gatway: unknown key, did you mean 'gateway'? (expected one of cidr, gateway)",
    ),
    "vip": (add("vip", key="interfce"), "vip.interfce: unknown key, did you mean 'interface'?"),
    "db": (add("db", key="replicaset"), "db.replicaset: unknown key, did you mean 'replica_set'?"),
    "ports": (add("ports", key="fronted"), "ports.fronted: unknown port, did you mean 'frontend'?"),
    "vrrp": (add("vrrp", key="profil"), "vrrp.profil: unknown key, did you mean 'profile'?"),
    "clients": (
        add("clients", key="unlimted"),
        "clients.unlimted: unknown key, did you mean 'unlimited'?",
    ),
    "node": (add("nodes", 1, key="rols"), "nodes[1].rols: unknown key, did you mean 'roles'?"),
    "no-close-key": (
        add(key="colour"),
        "colour: unknown top-level key (expected one of name, master, network,",
    ),
    "not-a-string-key": (add("vip", key=7), "vip.7: unknown key (expected one of address,"),
}


@pytest.mark.parametrize("case", sorted(TYPOS))
def test_an_unknown_key_is_named_with_the_closest_known_one(case):
    change, expected = TYPOS[case]
    topology = make_topology()
    change(topology)
    errors = problems(topology)
    assert any(e.startswith(expected) for e in errors), errors


def test_an_unknown_secret_key_is_named_with_the_closest_known_one():
    errors = problems(make_topology(), {"db_pasword": "x"})
    assert any(
        e.startswith("webstack:secrets:db_pasword: unknown key, did you mean 'db_password'?")
        for e in errors
    ), errors


def set_to(*path, value):
    def change(topology):
        where = topology
        for part in path[:-1]:
            where = where[part]
        where[path[-1]] = value

    return change


#: (change, expected error): a wrong shape anywhere is named, never a traceback.
SHAPES = {
    "network-list": (set_to("network", value=["10.88.0.0/24"]), "network: must be a mapping"),
    "network-with-clients-gateway": (
        lambda t: t.update(network="x", clients={"unlimited": ["gateway"]}),
        "network: must be a mapping",
    ),
    "cidr-number": (set_to("network", "cidr", value=24), "network.cidr: 24 is not an IPv4 network"),
    "master-list": (set_to("master", value=["10.88.0.1"]), "master: ['10.88.0.1'] is not a map"),
    "vip-none": (set_to("vip", value=None), "vip: missing; must be a mapping"),
    "vip-prefix-string": (set_to("vip", "prefix", value="24"), "vip.prefix: '24' is not a prefix"),
    "db-string": (set_to("db", value="ferretdb"), "db: missing; must be a mapping"),
    "engine-list": (set_to("db", "engine", value=["ferretdb"]), "db.engine: unknown engine ["),
    "ports-list": (set_to("ports", value=[80]), "ports: must be a mapping"),
    "vrrp-string": (set_to("vrrp", value="fast"), "vrrp: must be a mapping"),
    "vrrp-profile-list": (set_to("vrrp", value={"profile": ["fast"]}), "vrrp.profile: ['fast']"),
    "nodes-mapping": (set_to("nodes", value={"lb1": {}}), "nodes: must be a non-empty list"),
    "node-string": (set_to("nodes", 0, value="lb1"), "nodes[0]: must be a mapping"),
    "roles-string": (
        set_to("nodes", 0, "roles", value="lb"),
        "nodes[0].roles: must be a non-empty",
    ),
    "role-mapping": (
        set_to("nodes", 0, "roles", value=[{"lb": 1}]),
        "nodes[0].roles: unknown role",
    ),
    "name-number": (set_to("nodes", 0, "name", value=1), "nodes[0].name: 1 is not a valid node"),
    "priority-string": (set_to("nodes", 0, "priority", value="high"), "nodes[0].priority: 'high'"),
    "clients-entry-mapping": (
        set_to("clients", value={"unlimited": [{"a": 1}]}),
        "clients.unlimited[0]: {'a': 1}: not an IPv4 address",
    ),
    "mixed-key-types": (lambda t: t.update({1: 1, None: 2}), "1: unknown top-level key"),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_a_malformed_structure_is_named_not_a_traceback(case):
    change, expected = SHAPES[case]
    topology = make_topology()
    change(topology)
    errors = problems(topology)
    assert any(e.startswith(expected) for e in errors), errors


@pytest.mark.parametrize("secrets", [["x"], "x", 5])
def test_secrets_that_are_not_a_mapping_are_named(secrets):
    assert problems(make_topology(), secrets) == [
        "webstack:secrets: must be a mapping (see pillar/webstack_secrets.sls.example)"
    ]
