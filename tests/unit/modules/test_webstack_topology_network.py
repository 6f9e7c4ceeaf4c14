"""Addresses and ports: every address of the topology is a distinct host address of its subnet,
every port a node binds (whatever address it binds) differs from that node's other ports, and the
node counts keep a quorum."""

import pytest
from support.salt_modules import load
from support.state_tree import make_topology

derivation = load("_utils", "webstack_topology")
problems = derivation.problems


def changed(change, **shape):
    topology = make_topology(**shape)
    change(topology)
    return topology


def gateway(address):
    return lambda t: t["network"].update(gateway=address)


#: (change, expected error): make_topology's master is .1, lb1 .2 ..., the VIP .254 of /24. A
#: clash names both keys.
ADDRESSES = {
    "gateway-is-the-master": (
        gateway("10.88.0.1"),
        "network.gateway: 10.88.0.1 is also master.address",
    ),
    "gateway-is-a-node": (
        gateway("10.88.0.2"),
        "nodes[0].address: duplicate address 10.88.0.2 (also network.gateway)",
    ),
    "gateway-is-the-vip": (
        gateway("10.88.0.254"),
        "vip.address: 10.88.0.254 is also network.gateway",
    ),
    "gateway-is-the-broadcast": (
        gateway("10.88.0.255"),
        "network.gateway: 10.88.0.255 is the network or broadcast address",
    ),
    "gateway-not-ipv4": (
        gateway(["10.88.0.9"]),
        "network.gateway: ['10.88.0.9'] is not an IPv4 address",
    ),
    "master-outside": (
        lambda t: t["master"].update(address="10.99.0.1"),
        "master.address: 10.99.0.1 is outside the nodes' subnet 10.88.0.0/24",
    ),
    "master-is-the-network": (
        lambda t: t["master"].update(address="10.88.0.0"),
        "master.address: 10.88.0.0 is the network or broadcast address of 10.88.0.0/24",
    ),
    "master-not-ipv4": (
        lambda t: t["master"].update(address="master.example"),
        "master.address: 'master.example' is not an IPv4 address",
    ),
    "master-without-address": (lambda t: t["master"].pop("address"), "master.address: missing"),
    "node-is-the-broadcast": (
        lambda t: t["nodes"][0].update(address="10.88.0.255"),
        "nodes[0].address: 10.88.0.255 is the network or broadcast address of 10.88.0.0/24",
    ),
    "node-not-a-string": (
        lambda t: t["nodes"][0].update(address=167772162),
        "nodes[0].address: 167772162 is not an IPv4 address",
    ),
    "vip-is-the-master": (
        lambda t: t["vip"].update(address="10.88.0.1"),
        "vip.address: 10.88.0.1 is also master.address",
    ),
}


@pytest.mark.parametrize("case", sorted(ADDRESSES))
def test_each_address_is_a_distinct_host_address_of_the_subnet(case):
    change, expected = ADDRESSES[case]
    errors = problems(changed(change))
    assert any(e.startswith(expected) for e in errors), errors


def test_a_free_gateway_is_valid_and_derived():
    topology = changed(gateway("10.88.0.250"))
    assert problems(topology) == []
    assert derivation.derive(topology)["network"]["gateway"] == "10.88.0.250"


def ports(**values):
    return lambda t: t.update(ports=values)


def roles(index, *names):
    return lambda t: t["nodes"][index].update(roles=list(names))


#: (change, topology shape, expected error): each node's ports, of all its roles, are one set.
PORTS = {
    # The probe: app's nginx on 8088 collided with FerretDB's debug listener on each app node.
    "app-on-ferretdb-debug": (
        ports(app=8088),
        {},
        "ports.app: 8088 is also ports.ferretdb_debug (both bound on app1, app2)",
    ),
    "app-tls-on-app": (
        ports(app_tls=80),
        {},
        "ports.app_tls: 80 is also ports.app (both bound on app1, app2)",
    ),
    "frontend-on-https": (
        ports(frontend=443),
        {},
        "ports.frontend: 443 is also ports.https (both bound on lb1, lb2)",
    ),
    "https-on-stats": (
        ports(https=8404),
        {},
        "ports.https: 8404 is also ports.stats (both bound on lb1, lb2)",
    ),
    "ferretdb-on-app": (
        ports(ferretdb=80),
        {},
        "ports.ferretdb: 80 is also ports.app (both bound on app1, app2)",
    ),
    "lb-and-app-on-one-node": (
        roles(0, "lb", "app"),
        {},
        "ports.app: 80 is also ports.frontend (both bound on lb1)",
    ),
    "app-and-db-on-one-node": (
        lambda t: (
            t.update(ports={"postgresql": 8088}),
            t["nodes"][2].update(roles=["app", "db"]),
            t["nodes"].pop(),
        ),
        {},
        "ports.postgresql: 8088 is also ports.ferretdb_debug (both bound on app1)",
    ),
    "etcd-on-patroni": (
        ports(etcd_client=8008),
        {"dbs": 3},
        "ports.etcd_client: 8008 is also ports.patroni (both bound on db1, db2, db3)",
    ),
    "mongodb-on-app-of-an-app-db-node": (
        lambda t: (t.update(ports={"mongodb": 80}), t["nodes"][-1].update(roles=["app", "db"])),
        {"engine": "mongodb"},
        "ports.mongodb: 80 is also ports.app (both bound on db1)",
    ),
    "bool-is-not-a-port": (
        ports(ferretdb_debug=True),
        {},
        "ports.ferretdb_debug: True is not a TCP port (an integer from 1 to 65535)",
    ),
    "https-out-of-range": (ports(https=0), {}, "ports.https: 0 is not a TCP port"),
}


@pytest.mark.parametrize("case", sorted(PORTS))
def test_each_node_binds_each_port_once(case):
    change, shape, expected = PORTS[case]
    topology = make_topology(**shape)
    change(topology)
    errors = problems(topology)
    assert any(e.startswith(expected) for e in errors), errors


def test_ports_of_an_engine_or_a_cluster_not_in_use_may_be_anything():
    # mongodb: no FerretDB, no PostgreSQL; one ferretdb db node: no Patroni, no etcd.
    mongodb = changed(ports(ferretdb=80, ferretdb_debug=80, postgresql=27017), engine="mongodb")
    assert problems(mongodb) == []
    assert problems(changed(ports(patroni=5432, etcd_peer=5432))) == []
    # Different nodes may bind the same number: lbs and app nodes both on 8080.
    assert problems(changed(ports(frontend=8080, app=8080))) == []


def test_the_new_ports_are_derived_with_their_defaults():
    derived = derivation.derive(make_topology())["ports"]
    assert (derived["https"], derived["app_tls"], derived["ferretdb_debug"]) == (443, 8443, 8088)
    assert derivation.derive(changed(ports(https=8443)))["ports"]["https"] == 8443


@pytest.mark.parametrize(
    ("lbs", "apps", "dbs", "engine"),
    [(1, 1, 1, "ferretdb"), (1, 1, 1, "mongodb"), (2, 3, 3, "mongodb"), (3, 2, 5, "ferretdb")],
)
def test_node_counts_that_keep_a_quorum_are_valid(lbs, apps, dbs, engine):
    assert problems(make_topology(lbs=lbs, apps=apps, dbs=dbs, engine=engine)) == []


@pytest.mark.parametrize("engine", ["ferretdb", "mongodb"])
def test_two_db_nodes_lose_the_quorum_with_either_engine(engine):
    errors = problems(make_topology(dbs=2, engine=engine))
    assert len(errors) == 1 and errors[0].startswith(f"nodes: 2 db nodes with engine {engine};")
