"""
A bad topology or a missing secret fails the run with a message naming the offending key, and no
state other than the validation gate runs (highstate and role SLS alike).
"""

import copy

import pytest
from support.state_tree import SECRETS, make_topology

GATE = "webstack-common-validation-webstack_topology-validated"


def mutate(change):
    topology = make_topology(lbs=2, apps=2, dbs=1)
    change(topology)
    return topology


def set_node(index, **values):
    return lambda t: t["nodes"][index].update(values)


BAD_TOPOLOGIES = {
    "duplicate-name": (set_node(1, name="lb1"), "nodes[1].name: duplicate name 'lb1'"),
    "duplicate-address": (
        lambda t: t["nodes"][3].update(address=t["nodes"][2]["address"]),
        "nodes[3].address: duplicate address",
    ),
    "vip-is-a-node": (
        lambda t: t["vip"].update(address=t["nodes"][0]["address"]),
        "vip.address: 10.88.0.2 is also the address of nodes[0]",
    ),
    "vip-outside-subnet": (
        lambda t: t["vip"].update(address="10.99.0.10"),
        "vip.address: 10.99.0.10 is outside the nodes' subnet 10.88.0.0/24",
    ),
    "no-lb": (
        lambda t: [n.update(roles=["app"]) for n in t["nodes"] if n["roles"] == ["lb"]],
        "nodes: no node has the role 'lb'",
    ),
    "no-db": (lambda t: t["nodes"].pop(), "nodes: no node has the role 'db'"),
    "unknown-role": (set_node(2, roles=["web"]), "nodes[2].roles: unknown role 'web'"),
    "unknown-engine": (
        lambda t: t["db"].update(engine="mysql"),
        "db.engine: unknown engine 'mysql'",
    ),
    "port-out-of-range": (
        lambda t: t.update(ports={"frontend": 70000}),
        "ports.frontend: 70000 is not a TCP port",
    ),
    "duplicate-priority": (
        lambda t: [t["nodes"][i].update(priority=100) for i in (0, 1)],
        "nodes[1].priority: duplicate VRRP priority 100",
    ),
    "router-id-out-of-range": (
        lambda t: t["vip"].update(router_id=300),
        "vip.router_id: 300 is not a VRRP router id",
    ),
    "address-not-ipv4": (set_node(4, address="10.88.0.999"), "nodes[4].address: '10.88.0.999'"),
}


def assert_only_the_gate_failed(states, expected):
    assert list(states) == [GATE], f"states other than validation ran: {list(states)}"
    assert states[GATE]["result"] is False
    assert expected in states[GATE]["comment"], states[GATE]["comment"]
    assert states[GATE]["changes"] == {}


@pytest.mark.parametrize("case", sorted(BAD_TOPOLOGIES))
def test_bad_topology_stops_the_highstate_at_the_gate(case, state_tree):
    change, expected = BAD_TOPOLOGIES[case]
    tree = state_tree(mutate(change))
    assert_only_the_gate_failed(tree.apply("lb1"), expected)


@pytest.mark.parametrize("role", ["lb", "app", "db"])
def test_bad_topology_stops_a_role_sls_at_the_gate(role, state_tree):
    tree = state_tree(mutate(lambda t: t["db"].update(engine="mysql")))
    assert_only_the_gate_failed(tree.apply("lb1", f"webstack.{role}"), "db.engine")


@pytest.mark.parametrize(
    ("missing", "minion"),
    [("stats_password", "lb1"), ("app_secret_key", "app1"), ("db_password", "db1")],
)
def test_missing_secret_is_named(missing, minion, state_tree):
    """A minion checks the secrets its own roles use."""
    secrets = {k: v for k, v in SECRETS.items() if k != missing}
    tree = state_tree(make_topology(), secrets=secrets)
    assert_only_the_gate_failed(tree.apply(minion), f"webstack:secrets:{missing}: missing")


def test_no_secrets_file_names_every_secret_of_the_minion_s_roles(state_tree):
    tree = state_tree(make_topology(), secrets=None)
    states = tree.apply("app1")
    for key in ("app_secret_key", "db_password"):
        assert f"webstack:secrets:{key}: missing" in states[GATE]["comment"]
    assert "stats_password" not in states[GATE]["comment"]
    assert_only_the_gate_failed(states, "webstack:secrets:")


def test_a_placeholder_secret_is_refused(state_tree):
    tree = state_tree(make_topology(), secrets={**SECRETS, "stats_password": "CHANGE-ME"})
    assert_only_the_gate_failed(
        tree.apply("lb1"), "webstack:secrets:stats_password: is a placeholder"
    )


def test_mongodb_engine_requires_its_keyfile(state_tree):
    secrets = copy.deepcopy(SECRETS)
    del secrets["mongodb_keyfile"]
    tree = state_tree(make_topology(engine="mongodb"), secrets=secrets)
    assert_only_the_gate_failed(tree.apply("db1"), "webstack:secrets:mongodb_keyfile: missing")


def test_minion_missing_from_the_topology_is_refused(state_tree):
    tree = state_tree(make_topology())
    assert_only_the_gate_failed(tree.apply("ghost"), "this minion ('ghost') is not a node")


def test_the_site_ca_minion_gets_the_ca_and_nothing_else(state_tree):
    tree = state_tree(make_topology())
    states = tree.apply("ca")
    failed = {k: v["comment"] for k, v in states.items() if v["result"] is False}
    assert not failed, failed
    ids = {v.get("__id__", k) for k, v in states.items()}
    assert "webstack-pki-ca-key-x509-private_key_managed" in ids
    assert "webstack-pki-ca-certificate-x509-certificate_managed" in ids
    # No role's state, no node certificate: the CA minion is not a node.
    assert not any(i.startswith(("webstack-lb-", "webstack-app-", "webstack-db-")) for i in ids)
    assert "webstack-pki-certificate-webstack_pki-certificate_managed" not in ids


def test_ferretdb_source_missing_is_named(state_tree):
    tree = state_tree(make_topology(), lookup={"ferretdb": {"source": ""}})
    assert_only_the_gate_failed(tree.apply("app1"), "webstack:lookup:ferretdb:source: missing")
