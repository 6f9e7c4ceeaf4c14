"""Unit tests of the db-cluster rules of _modules/webstack_topology.py (engine ferretdb, 3+ db
nodes: Patroni + etcd), and of what derive()/node() give the states for it."""

import json
import subprocess
import sys

import pytest
import yaml
from support.salt_modules import load
from support.state_tree import REPO, SECRETS, make_topology

topo = load("_modules", "webstack_topology")
#: The rules, as Salt's loader serves them (``__utils__["webstack_topology.problems"]``).
problems = load("_utils", "webstack_topology").problems

CLUSTER_SECRETS = (
    "postgres_superuser_password",
    "postgres_replication_password",
    "postgres_rewind_password",
    "patroni_rest_password",
)
BASE_SECRETS = {k: v for k, v in SECRETS.items() if k not in CLUSTER_SECRETS}


def errors_of(topology, secrets=None, lookup=None):
    return problems(topology, secrets, lookup)


def test_two_ferretdb_db_nodes_are_refused_naming_nodes_and_the_choice():
    errors = errors_of(make_topology(dbs=2))
    assert errors == [
        "nodes: 2 db nodes with engine ferretdb; use 1 (single PostgreSQL) or >= 3 "
        "(Patroni cluster with etcd quorum): with 2, the loss of one leaves no majority to "
        "elect a new primary"
    ]
    with pytest.raises(topo.TopologyError, match=r"^invalid topology: nodes: 2 db nodes"):
        topo.derive(make_topology(dbs=2))


@pytest.mark.parametrize("dbs", [1, 3, 4, 5])
def test_one_or_three_and_more_ferretdb_db_nodes_are_valid(dbs):
    assert errors_of(make_topology(dbs=dbs)) == []


def test_two_mongodb_db_nodes_are_not_this_rule_s_business():
    assert errors_of(make_topology(dbs=2, engine="mongodb")) == []


@pytest.mark.parametrize(
    "dbs, engine, cluster", [(1, "ferretdb", False), (3, "ferretdb", True), (3, "mongodb", False)]
)
def test_db_cluster_is_derived_only_for_ferretdb_with_three_or_more(dbs, engine, cluster):
    derived = topo.derive(make_topology(dbs=dbs, engine=engine))
    assert derived["db"]["cluster"] is cluster
    assert (derived["db_cluster"] is not None) is cluster
    for port, number in (("patroni", 8008), ("etcd_client", 2379), ("etcd_peer", 2380)):
        assert derived["ports"][port] == number


def test_cluster_members_urls_and_etcd_initial_cluster_follow_topology_order():
    topology = make_topology(lbs=1, apps=1, dbs=3)
    topology["nodes"].reverse()  # order in the file is the order everywhere
    derived = topo.derive(topology)
    dbs = [n for n in topology["nodes"] if "db" in n["roles"]]
    cluster = derived["db_cluster"]
    assert cluster["scope"] == topology["name"]
    assert [m["name"] for m in cluster["members"]] == [d["name"] for d in dbs]
    first = cluster["members"][0]
    address = dbs[0]["address"]
    assert first == {
        "name": dbs[0]["name"],
        "address": address,
        "postgresql": f"{address}:5432",
        "postgresql_listen": f"127.0.0.1,{address}:5432",
        "patroni_api": f"{address}:8008",
        "patroni_url": f"https://{address}:8008",
        "etcd_client_url": f"https://{address}:2379",
        "etcd_listen_client_urls": f"https://{address}:2379,https://127.0.0.1:2379",
        "etcd_peer_url": f"https://{address}:2380",
    }
    assert cluster["etcd_hosts"] == [f"{d['address']}:2379" for d in dbs]
    assert cluster["etcd_initial_cluster"] == ",".join(
        f"{d['name']}=https://{d['address']}:2380" for d in dbs
    )
    assert cluster["etcd_token"] == f"{topology['name']}-etcd"


def test_node_view_carries_its_own_member_entry():
    topology = make_topology(lbs=1, apps=1, dbs=3)
    assert topo.node("db2", topology)["db_member"]["name"] == "db2"
    assert topo.node("app1", topology)["db_member"] is None
    assert "db_member" not in topo.node("db1", make_topology(dbs=1))


def test_cluster_ports_can_move_and_must_not_collide():
    topology = make_topology(dbs=3)
    topology["ports"] = {"patroni": 18008, "etcd_client": 12379, "etcd_peer": 12380}
    derived = topo.derive(topology)
    assert derived["db_cluster"]["members"][0]["patroni_api"].endswith(":18008")
    assert derived["db_cluster"]["etcd_initial_cluster"].split(",")[0].endswith(":12380")
    topology["ports"] = {"patroni": 5432}
    assert errors_of(topology) == [
        "ports.patroni: 5432 is also ports.postgresql (both listen on each db node's address)"
    ]
    topology["ports"] = {"etcd_peer": 70000}
    assert errors_of(topology) == [
        "ports.etcd_peer: 70000 is not a TCP port (an integer from 1 to 65535)"
    ]
    # One db node: those ports are unused and may be anything valid.
    single = make_topology(dbs=1)
    single["ports"] = {"patroni": 5432}
    assert errors_of(single) == []


def test_cluster_name_must_suit_a_patroni_scope():
    topology = make_topology(dbs=3)
    topology["name"] = "my lab/1"
    assert errors_of(topology) == [
        "name: 'my lab/1' names the Patroni cluster (its scope) with 3 db nodes: letters, "
        "digits, '-' and '_', at most 63"
    ]
    topology["name"] = "lab-ha_db"
    assert errors_of(topology) == []


def test_cluster_secrets_are_required_only_with_a_cluster():
    assert errors_of(make_topology(dbs=1), BASE_SECRETS) == []
    errors = errors_of(make_topology(dbs=3), BASE_SECRETS)
    assert errors == [
        f"webstack:secrets:{key}: missing or empty (see pillar/webstack_secrets.sls.example)"
        for key in CLUSTER_SECRETS
    ]
    assert errors_of(make_topology(dbs=3), SECRETS) == []
    assert errors_of(make_topology(dbs=3, engine="mongodb"), BASE_SECRETS) == []


def _secrets_required_by_a_cluster():
    """The secrets validation asks of a Patroni cluster and not of a single db node."""
    prefix = "webstack:secrets:"
    missing = {
        dbs: {e[len(prefix) :].split(":")[0] for e in errors_of(make_topology(dbs=dbs), {})}
        for dbs in (1, 3)
    }
    return missing[3] - missing[1]


def test_every_cluster_secret_is_documented_and_generated_by_the_lab():
    required = _secrets_required_by_a_cluster()
    assert required == set(CLUSTER_SECRETS)
    example = yaml.safe_load((REPO / "pillar" / "webstack_secrets.sls.example").read_text())
    assert required <= set(example["webstack"]["secrets"])
    sitedir = (REPO / "lab" / "labkit" / "sitedir.py").read_text()
    for key in required:
        assert f'"{key}"' in sitedir


def test_the_ha_lab_topology_is_the_lab_plus_two_db_nodes():
    lab = yaml.safe_load((REPO / "topology" / "lab.yaml").read_text())
    ha = yaml.safe_load((REPO / "topology" / "lab-ha-db.yaml").read_text())
    assert ha["name"] != lab["name"]
    assert {k: v for k, v in ha.items() if k not in ("name", "nodes")} == {
        k: v for k, v in lab.items() if k not in ("name", "nodes")
    }
    assert ha["nodes"][: len(lab["nodes"])] == lab["nodes"]
    extra = ha["nodes"][len(lab["nodes"]) :]
    assert [(n["name"], n["address"], n["roles"]) for n in extra] == [
        ("db2", "10.77.0.32", ["db"]),
        ("db3", "10.77.0.33", ["db"]),
    ]
    assert topo.derive(ha)["db"]["cluster"] is True
    assert topo.derive(lab)["db"]["cluster"] is False


def test_cli_reports_the_two_db_node_error():
    topology = make_topology(dbs=2)
    proc = subprocess.run(
        [sys.executable, str(REPO / "_modules" / "webstack_topology.py"), "validate", "-"],
        input=json.dumps(topology),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "nodes: 2 db nodes with engine ferretdb" in proc.stderr
