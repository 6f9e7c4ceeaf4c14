"""Unit tests of the values the states and the orchestration only render (``pg_hba`` rows,
replica-set members, FerretDB's PostgreSQL hosts, the app's URI template, the deploy order)."""

import pytest
from support.salt_modules import load
from support.state_tree import make_topology

derivation = load("_utils", "webstack_topology")


def addresses(topology, role):
    return {f"{n['address']}/32" for n in topology["nodes"] if role in n["roles"]}


def test_a_db_cluster_admits_replication_from_db_nodes_and_the_app_user_from_app_nodes():
    topology = make_topology(lbs=2, apps=3, dbs=3)
    rows = derivation.derive(topology)["pg_hba"]
    remote = [r for r in rows if r["address"] not in (None, "127.0.0.1/32")]
    # From the network, TLS only: a client without it matches no row.
    assert {r["type"] for r in remote} == {"hostssl"}
    replication = {r["address"] for r in remote if r["database"] == "replication"}
    rewind = {r["address"] for r in remote if r["role"] == "rewind"}
    app = {r["address"] for r in remote if r["user"] == "webstack"}
    assert replication == rewind == addresses(topology, "db")
    assert app == addresses(topology, "app")
    assert {r["role"] for r in remote if r["database"] == "replication"} == {"replication"}
    assert all(r["method"] == "scram-sha-256" for r in remote)
    # Nothing else from the network: every remote row is one of those.
    assert len(remote) == 2 * 3 + 3
    assert not any(r["address"] in addresses(topology, "lb") for r in rows)


def test_each_node_is_issued_names_of_its_own_and_the_lbs_the_vip():
    topology = make_topology(lbs=2, apps=2, dbs=1)
    pki = derivation.derive(topology)["pki"]
    vip = topology["vip"]["address"]
    assert pki["ca_minion"] == "ca"
    for node in topology["nodes"]:
        expected = [f"DNS:{node['name']}", f"IP:{node['address']}"]
        if "lb" in node["roles"]:
            expected.append(f"IP:{vip}")
        if "db" in node["roles"]:
            expected += ["DNS:localhost", "IP:127.0.0.1"]
        assert pki["names"][node["name"]] == expected
    named = dict(topology, master=dict(topology.get("master") or {}, minion_id="site-ca"))
    assert derivation.derive(named)["pki"]["ca_minion"] == "site-ca"


def test_a_single_postgresql_admits_only_the_app_nodes_from_the_network():
    topology = make_topology(lbs=1, apps=2, dbs=1)
    rows = derivation.derive(topology)["pg_hba"]
    remote = [r for r in rows if r["address"] not in (None, "127.0.0.1/32")]
    assert {r["address"] for r in remote} == addresses(topology, "app")
    assert {(r["database"], r["user"]) for r in remote} == {("webstack", "webstack")}
    assert [r["node"] for r in remote] == ["app1", "app2"]
    assert {r["type"] for r in remote} == {"hostssl"}
    assert rows[0] == dict(rows[0], type="local", user="postgres", method="peer")


def test_mongodb_has_no_pg_hba_and_its_members_are_the_db_nodes_in_order():
    topology = make_topology(lbs=1, apps=1, dbs=3, engine="mongodb")
    topology["ports"] = {"mongodb": 27018}
    topology["nodes"].reverse()
    derived = derivation.derive(topology)
    dbs = [n for n in topology["nodes"] if "db" in n["roles"]]
    assert derived["pg_hba"] == []
    assert derived["mongodb_members"] == [f"{n['address']}:27018" for n in dbs]
    assert derived["mongodb_initiator"] == dbs[0]["name"]


def test_ferretdb_reaches_every_db_node_at_the_postgresql_port():
    topology = make_topology(dbs=3)
    topology["ports"] = {"postgresql": 6543}
    dbs = [n for n in topology["nodes"] if "db" in n["roles"]]
    hosts = derivation.derive(topology)["ferretdb_postgresql_hosts"]
    assert hosts == [f"{n['address']}:6543" for n in dbs]


@pytest.mark.parametrize("engine", ["ferretdb", "mongodb"])
def test_the_app_uri_leaves_only_the_secret_and_the_sidecar_address_to_the_state(engine):
    topology = make_topology(dbs=3 if engine == "mongodb" else 1, engine=engine)
    topology["db"].update(name="notes", user="u_1")
    template = derivation.derive(topology)["app_db_uri"]
    uri = template.format(password="p%2Fw", ferretdb_listen="127.0.0.1")
    assert uri.startswith("mongodb://u_1:p%2Fw@")
    if engine == "ferretdb":
        assert uri == "mongodb://u_1:p%2Fw@127.0.0.1:27017/notes?authMechanism=PLAIN"
    else:
        hosts = ",".join(f"{n['address']}:27017" for n in topology["nodes"] if "db" in n["roles"])
        assert uri == f"mongodb://u_1:p%2Fw@{hosts}/notes?replicaSet=rs0&authSource=notes"


def test_the_deploy_order_is_the_app_nodes_in_topology_order_drained_on_every_lb():
    topology = make_topology(lbs=2, apps=3)
    topology["nodes"].reverse()
    order = derivation.derive(topology)["deploy_order"]
    assert order == {"app": ["app3", "app2", "app1"], "lb": ["lb2", "lb1"]}


def test_haproxy_servers_and_nginx_lb_sources():
    topology = make_topology(lbs=2, apps=2)
    # haproxy reaches nginx's TLS listener (app_tls), not the direct-access port (app).
    topology["ports"] = {"app": 8080, "app_tls": 9443}
    derived = derivation.derive(topology)
    apps = [n for n in topology["nodes"] if "app" in n["roles"]]
    assert derived["app_servers"] == [
        {"name": n["name"], "address": f"{n['address']}:9443"} for n in apps
    ]
    assert derived["lb_names"] == [n["name"] for n in topology["nodes"] if "lb" in n["roles"]]
    assert set(derived["lb_sources"]) == addresses(topology, "lb")
