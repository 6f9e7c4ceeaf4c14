"""Unit tests of _utils/webstack_verdict.py on a Patroni cluster (engine ferretdb, 3 db nodes):
the db nodes answer with ``webstack_patroni.cluster`` views parsed from real Patroni answers."""

import json

from support.salt_modules import REPO, UTILS_MODULES, load
from support.status_answers import VIP, full_return

verdict = UTILS_MODULES["webstack_verdict"]
patroni = load("_modules", "webstack_patroni", "webstack_patroni_verdict")

ANSWERS = REPO / "tests" / "unit" / "modules" / "patroni_answers"
DBS = ["db1", "db2", "db3"]
NODES = ["lb1", "app1", *DBS]


def view(name, unreachable=None, source="db1"):
    data = json.loads((ANSWERS / f"{name}.json").read_text())
    config = json.loads((ANSWERS / "config.json").read_text())
    parsed = patroni.parse_cluster(data, config, DBS, unreachable=unreachable)
    return dict(parsed, source=source, engine="ferretdb", cluster=True)


def answer(name, roles, backends=None, owner=False):
    vip = {"vip": VIP, "owner": owner, "vrrp_state": "MASTER" if owner else "BACKUP"}
    return full_return(name, roles, backends or {}, {}, vip, nodes=NODES, db_nodes=DBS)


def returns(db_views):
    lb = {
        "lb": {
            "backends": {
                "app": {"servers": {"app1": {"status": "UP"}}, "servers_serving": 1},
            }
        }
    }
    out = {
        "lb1": answer("lb1", ["lb"], lb, owner=True),
        "app1": answer("app1", ["app"], {"app": {"healthy": True}}),
    }
    for name, db in db_views.items():
        out[name] = answer(name, ["db"], {"db": db})
    return out


def test_a_healthy_cluster_names_leader_sync_and_lag():
    report = verdict.summarize(returns({n: view("cluster-healthy", source=n) for n in DBS}), NODES)
    assert report["healthy"], report["problems"]
    assert report["warnings"] == []
    db = report["db"]
    assert db["healthy"] and not db["degraded"]
    assert db["cluster"]["leader"] == "db3" and db["cluster"]["sync_standbys"] == ["db1"]
    summary = db["nodes"]["db1"]["summary"]
    assert summary == ("patroni: leader db3, db1* sync running lag 0 B, db2 async running lag 0 B")
    assert "  db3: patroni: leader db3*, " in report["table"]
    assert report["table"].rstrip().endswith("HEALTHY")


def test_a_replica_down_is_degraded_but_healthy():
    report = verdict.summarize(
        returns({n: view("cluster-replica-gone", source=n) for n in ("db2", "db3")}), NODES
    )
    assert report["healthy"] and report["retcode"] == 0, report["problems"]
    assert (
        "DB degraded: db1: not in the cluster (Patroni down or unreachable)" in report["warnings"]
    )
    assert "db1: no answer" in report["warnings"]
    assert report["db"]["degraded"]
    assert report["db"]["nodes"]["db2"]["summary"].endswith(", degraded")


def test_no_leader_is_unhealthy():
    report = verdict.summarize(
        returns({n: view("cluster-bootstrapping-no-leader", source=n) for n in DBS}), NODES
    )
    assert report["retcode"] == 1
    assert (
        "DB: no leader: no member holds the leader lock (writes are refused)" in report["problems"]
    )
    assert report["db"]["nodes"]["db1"]["summary"].startswith("patroni: NO LEADER")


def test_no_synchronous_standby_is_unhealthy():
    killed = {"db2": "No route to host"}
    views = {n: view("cluster-sync-replica-just-killed", killed, source=n) for n in ("db1", "db3")}
    report = verdict.summarize(returns(views), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [
        "DB: no synchronous standby: a write acknowledged now would live on db3 only"
    ]
    assert "DB degraded: db2: does not answer (No route to host)" in report["warnings"]


def test_db_nodes_that_disagree_on_the_leader_are_a_problem():
    views = {
        "db1": view("cluster-healthy", source="db1"),
        "db2": view("cluster-after-failover", source="db2"),
    }
    report = verdict.summarize(returns(views), NODES)
    assert report["retcode"] == 1
    assert "DB: db nodes see different leaders (db1: db3, db2: db2)" in report["problems"]


def test_a_db_node_whose_module_failed_does_not_hide_the_others():
    views = {
        "db1": {"engine": "ferretdb", "healthy": False, "error": "webstack_patroni not loaded"},
        "db2": view("cluster-healthy", source="db2"),
    }
    report = verdict.summarize(returns(views), NODES)
    assert report["healthy"], report["problems"]
    assert report["db"]["nodes"]["db1"]["summary"] == "webstack_patroni not loaded"


def test_the_lag_is_shown_in_readable_units():
    assert verdict.lag_text(None) == "lag unknown"
    assert verdict.lag_text(512) == "lag 512 B"
    assert verdict.lag_text(3 * 1024 * 1024) == "lag 3.0 MB"


def test_single_postgresql_summaries_are_unchanged():
    db = {"engine": "ferretdb", "accepting": True, "role": "primary", "healthy": True}
    assert verdict.db_summary(db) == "postgresql primary, accepting connections"
