"""Unit tests of _runners/webstack.py: how the cluster is judged from the minions' answers."""

from unittest import mock

import pytest
from functional.modules import webstack_harness as harness

runner = harness.load_source("_runners", "webstack_runner")

VIP = "10.77.0.100"
NODES = ["lb1", "lb2", "app1", "app2", "db1"]


def server(status="UP", admin="ready"):
    up = status.startswith("UP") or status == "DRAIN"
    return {
        "status": status,
        "admin_state": admin,
        "op_state": "running" if up else "stopped",
        "up": up,
        "serving": up and admin == "ready",
        "check_status": "L7OK" if up else "L4CON",
        "weight": 1,
        "sessions": 0,
    }


def answer(name, roles, owner=False, vrrp="BACKUP", servers=None, db=None, app_ok=True):
    backends = {}
    if "lb" in roles:
        servers = servers if servers is not None else {"app1": server(), "app2": server()}
        backends["lb"] = {
            "frontends": {"www": {"status": "OPEN", "sessions": 0}},
            "backends": {
                "app": {
                    "status": "UP",
                    "servers": servers,
                    "servers_serving": sum(s["serving"] for s in servers.values()),
                }
            },
        }
    if "app" in roles:
        ok = {"status": 200 if app_ok else 503, "ok": app_ok}
        backends["app"] = {
            "nginx": {"healthz": ok, "readyz": ok},
            "gunicorn": {"healthz": ok, "readyz": ok},
            "healthy": app_ok,
        }
    if "db" in roles:
        backends["db"] = db or {
            "engine": "ferretdb",
            "accepting": True,
            "role": "primary",
            "healthy": True,
            "pg_isready": "accepting connections",
        }
    return {
        "ret": {
            "node": name,
            "roles": roles,
            "topology": {
                "valid": True,
                "nodes": NODES,
                "db_nodes": ["db1"],
                "db_engine": "ferretdb",
                "vip": VIP,
            },
            "backends": backends,
            "services": {"haproxy": {"running": True, "enabled": True}} if "lb" in roles else {},
            "vip": {
                "vip": VIP,
                "owner": owner,
                "vrrp_state": vrrp if "lb" in roles else "UNKNOWN",
                "priority": {"lb1": 200, "lb2": 190}.get(name),
                "consistent": True,
            },
        },
        "retcode": 0,
    }


def cluster(**changes):
    returns = {
        "lb1": answer("lb1", ["lb"], owner=True, vrrp="MASTER"),
        "lb2": answer("lb2", ["lb"]),
        "app1": answer("app1", ["app"]),
        "app2": answer("app2", ["app"]),
        "db1": answer("db1", ["db"]),
    }
    returns.update(changes)
    return {k: v for k, v in returns.items() if v is not None}


def test_a_healthy_cluster():
    report = runner._summarize(cluster(), NODES)
    assert report["healthy"] is True, report["problems"]
    assert report["retcode"] == 0
    assert report["vip"]["owners"] == ["lb1"]
    assert report["backends"]["lb2"]["app"]["app1"]["status"] == "UP"
    assert report["db"]["healthy"] is True
    table = report["table"]
    assert f"VIP {VIP}: held by lb1" in table
    assert table.rstrip().endswith("HEALTHY")
    row = next(line for line in table.splitlines() if line.startswith("lb1 ") and "OWNER" in line)
    assert "MASTER" in row and "200" in row
    assert any(line.split()[:3] == ["lb2", "app/app2", "UP"] for line in table.splitlines())


def test_no_owner():
    report = runner._summarize(cluster(lb1=answer("lb1", ["lb"])), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [f"no VIP owner: none of lb1, lb2 holds {VIP}"]
    assert "NO OWNER" in report["table"]


def test_split_brain_names_every_owner():
    report = runner._summarize(cluster(lb2=answer("lb2", ["lb"], owner=True, vrrp="MASTER")), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [f"split brain: {VIP} is held by lb1, lb2"]
    assert "SPLIT BRAIN, held by lb1, lb2" in report["table"]


def test_a_silent_holder_seen_on_the_wire_is_a_split_brain():
    """lb1 frozen: it answers no Salt call, yet answers ARP for the VIP that lb2 took over."""
    lb2 = answer("lb2", ["lb"], owner=True, vrrp="MASTER")
    lb2["ret"]["vip"]["others"] = [
        {"mac": "00:16:3e:00:00:0b", "addresses": ["10.77.0.11"], "node": "lb1"}
    ]
    report = runner._summarize(cluster(lb1=None, lb2=lb2), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [
        f"split brain: {VIP} is held by lb1, lb2 (lb1 answer ARP for it, not Salt)"
    ]
    assert report["vip"]["owners"] == ["lb1", "lb2"]
    assert "SPLIT BRAIN, held by lb1, lb2" in report["table"]


def test_an_unknown_second_holder_is_named_by_its_mac():
    lb1 = answer("lb1", ["lb"], owner=True, vrrp="MASTER")
    lb1["ret"]["vip"]["others"] = [{"mac": "02:00:00:00:00:99", "addresses": [], "node": None}]
    report = runner._summarize(cluster(lb1=lb1), NODES)
    assert "an unknown host (02:00:00:00:00:99)" in report["problems"][0]


def test_a_silent_lb_alone_is_not_a_split_brain():
    report = runner._summarize(cluster(lb2=None), NODES)
    assert report["healthy"] is True, report["problems"]
    assert "lb2: no answer" in report["warnings"]


def test_a_vip_on_a_node_that_is_not_an_lb_is_an_owner_too():
    app1 = answer("app1", ["app"])
    app1["ret"]["vip"]["owner"] = True
    report = runner._summarize(cluster(app1=app1), NODES)
    assert report["vip"]["owners"] == ["app1", "lb1"]
    assert report["retcode"] == 1


def test_a_vip_held_only_by_a_node_that_is_not_an_lb():
    app1 = answer("app1", ["app"])
    app1["ret"]["vip"]["owner"] = True
    report = runner._summarize(cluster(app1=app1, lb1=answer("lb1", ["lb"])), NODES)
    assert report["problems"] == [f"{VIP} is held by app1, which is not an lb (no haproxy there)"]


def test_all_backends_down_on_an_lb():
    down = {"app1": server("DOWN"), "app2": server("DOWN")}
    report = runner._summarize(cluster(lb2=answer("lb2", ["lb"], servers=down)), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [
        "all backends down on lb2: backend app has no server in service (app1 DOWN, app2 DOWN)"
    ]


def test_one_drained_backend_is_healthy():
    drained = {"app1": server("DRAIN", "drain"), "app2": server()}
    report = runner._summarize(
        cluster(
            lb1=answer("lb1", ["lb"], owner=True, vrrp="MASTER", servers=drained),
            lb2=answer("lb2", ["lb"], servers=drained),
        ),
        NODES,
    )
    assert report["healthy"] is True, report["problems"]


def test_db_down():
    db = {"engine": "ferretdb", "accepting": False, "role": None, "healthy": False}
    report = runner._summarize(cluster(db1=answer("db1", ["db"], db=db)), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [
        "DB down: db1: postgresql role unknown, not accepting connections"
    ]


def test_a_silent_db_node_means_db_down():
    report = runner._summarize(cluster(db1=None, app2=None), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == ["DB down: no db node answered (silent: db1)"]
    assert "db1: no answer" in report["warnings"]
    assert any(
        line.startswith("db1 ") and "(no answer)" in line for line in report["table"].splitlines()
    )


def test_mongodb_primary_counts():
    db = {
        "engine": "mongodb",
        "ping": True,
        "healthy": True,
        "replica_set": {
            "initiated": True,
            "name": "rs0",
            "primary": "10.0.0.31:27017",
            "members": [{"name": "10.0.0.31:27017", "state": "PRIMARY"}],
        },
    }
    report = runner._summarize(cluster(db1=answer("db1", ["db"], db=db)), NODES)
    assert report["healthy"] is True
    assert report["db"]["nodes"]["db1"]["summary"] == "replica set rs0: 10.0.0.31:27017 PRIMARY"


def test_a_minion_without_the_module_is_a_warning():
    report = runner._summarize(
        cluster(app2={"ret": "'webstack.status' is not available.", "retcode": 254}), NODES
    )
    assert report["healthy"] is True
    assert "app2: webstack.status failed: 'webstack.status' is not available." in report["warnings"]


def test_unhealthy_app_is_a_warning_haproxy_decides():
    report = runner._summarize(cluster(app2=answer("app2", ["app"], app_ok=False)), NODES)
    assert report["healthy"] is True
    assert any(w.startswith("app2: app unhealthy") for w in report["warnings"])


@pytest.fixture
def configure_loader_modules():
    return {runner: {"__opts__": {"conf_file": "/dev/null"}, "__context__": {}}}


def test_status_gathers_every_minion_and_sets_the_exit_code():
    client = mock.MagicMock()
    client.cmd.return_value = cluster(lb1=answer("lb1", ["lb"]))
    with (
        mock.patch.object(runner.salt.client, "get_local_client", return_value=client),
        mock.patch.object(runner.salt.utils.minions, "CkMinions") as ckminions,
    ):
        ckminions.return_value.check_minions.return_value = {"minions": NODES}
        report = runner.status(timeout=7)
        assert client.cmd.call_args.args[:2] == ("*", "webstack.status")
        assert client.cmd.call_args.kwargs["timeout"] == 7
        detailed = runner.status(details=True)
    assert report["retcode"] == 1
    assert runner.__context__["retcode"] == 1
    assert set(report) == {"healthy", "retcode", "problems", "warnings", "vip", "table"}
    assert report["vip"] == {"address": VIP, "owners": []}
    assert detailed["minions"] == client.cmd.return_value
    assert detailed["backends"]["lb2"]["app"]["app1"]["status"] == "UP"
