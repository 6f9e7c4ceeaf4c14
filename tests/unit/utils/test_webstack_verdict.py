"""Unit tests of _utils/webstack_verdict.py: how the cluster is judged from the minions' answers
(``salt-run webstack.status`` gathers them: tests/unit/runners/test_webstack_runner.py)."""

from support.salt_modules import UTILS_MODULES
from support.status_answers import NODES, VIP, answer, cluster, server

verdict = UTILS_MODULES["webstack_verdict"]


def test_a_healthy_cluster():
    report = verdict.summarize(cluster(), NODES)
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
    report = verdict.summarize(cluster(lb1=answer("lb1", ["lb"])), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [f"no VIP owner: none of lb1, lb2 holds {VIP}"]
    assert "NO OWNER" in report["table"]


def test_split_brain_names_every_owner():
    report = verdict.summarize(cluster(lb2=answer("lb2", ["lb"], owner=True, vrrp="MASTER")), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [f"split brain: {VIP} is held by lb1, lb2"]
    assert "SPLIT BRAIN, held by lb1, lb2" in report["table"]


def test_a_silent_holder_seen_on_the_wire_is_a_split_brain():
    """lb1 frozen: it answers no Salt call, yet answers ARP for the VIP that lb2 took over."""
    lb2 = answer("lb2", ["lb"], owner=True, vrrp="MASTER")
    lb2["ret"]["vip"]["others"] = [
        {"mac": "00:16:3e:00:00:0b", "addresses": ["10.77.0.11"], "node": "lb1"}
    ]
    report = verdict.summarize(cluster(lb1=None, lb2=lb2), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [
        f"split brain: {VIP} is held by lb1, lb2 (lb1 answer ARP for it, not Salt)"
    ]
    assert report["vip"]["owners"] == ["lb1", "lb2"]
    assert "SPLIT BRAIN, held by lb1, lb2" in report["table"]


def test_an_unknown_second_holder_is_named_by_its_mac():
    lb1 = answer("lb1", ["lb"], owner=True, vrrp="MASTER")
    lb1["ret"]["vip"]["others"] = [{"mac": "02:00:00:00:00:99", "addresses": [], "node": None}]
    report = verdict.summarize(cluster(lb1=lb1), NODES)
    assert "an unknown host (02:00:00:00:00:99)" in report["problems"][0]


def test_a_silent_lb_alone_is_not_a_split_brain():
    report = verdict.summarize(cluster(lb2=None), NODES)
    assert report["healthy"] is True, report["problems"]
    assert "lb2: no answer" in report["warnings"]


def test_a_vip_on_a_node_that_is_not_an_lb_is_an_owner_too():
    app1 = answer("app1", ["app"])
    app1["ret"]["vip"]["owner"] = True
    report = verdict.summarize(cluster(app1=app1), NODES)
    assert report["vip"]["owners"] == ["app1", "lb1"]
    assert report["retcode"] == 1


def test_a_vip_held_only_by_a_node_that_is_not_an_lb():
    app1 = answer("app1", ["app"])
    app1["ret"]["vip"]["owner"] = True
    report = verdict.summarize(cluster(app1=app1, lb1=answer("lb1", ["lb"])), NODES)
    assert report["problems"] == [f"{VIP} is held by app1, which is not an lb (no haproxy there)"]


def test_all_backends_down_on_an_lb():
    down = {"app1": server("DOWN"), "app2": server("DOWN")}
    report = verdict.summarize(cluster(lb2=answer("lb2", ["lb"], servers=down)), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [
        "all backends down on lb2: backend app has no server in service (app1 DOWN, app2 DOWN)"
    ]


def test_one_drained_backend_is_healthy():
    drained = {"app1": server("DRAIN", "drain"), "app2": server()}
    report = verdict.summarize(
        cluster(
            lb1=answer("lb1", ["lb"], owner=True, vrrp="MASTER", servers=drained),
            lb2=answer("lb2", ["lb"], servers=drained),
        ),
        NODES,
    )
    assert report["healthy"] is True, report["problems"]


def test_db_down():
    db = {"engine": "ferretdb", "accepting": False, "role": None, "healthy": False}
    report = verdict.summarize(cluster(db1=answer("db1", ["db"], db=db)), NODES)
    assert report["retcode"] == 1
    assert report["problems"] == [
        "DB down: db1: postgresql role unknown, not accepting connections"
    ]


def test_a_silent_db_node_means_db_down():
    report = verdict.summarize(cluster(db1=None, app2=None), NODES)
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
    report = verdict.summarize(cluster(db1=answer("db1", ["db"], db=db)), NODES)
    assert report["healthy"] is True
    assert report["db"]["nodes"]["db1"]["summary"] == "replica set rs0: 10.0.0.31:27017 PRIMARY"


def test_a_minion_without_the_module_is_a_warning():
    report = verdict.summarize(
        cluster(app2={"ret": "'webstack.status' is not available.", "retcode": 254}), NODES
    )
    assert report["healthy"] is True
    assert "app2: webstack.status failed: 'webstack.status' is not available." in report["warnings"]


def test_unhealthy_app_is_a_warning_haproxy_decides():
    report = verdict.summarize(cluster(app2=answer("app2", ["app"], app_ok=False)), NODES)
    assert report["healthy"] is True
    assert any(w.startswith("app2: app unhealthy") for w in report["warnings"])


def test_a_certificate_near_its_end_is_a_warning_not_a_problem():
    soon = answer("app1", ["app"])
    soon["ret"]["backends"]["certificates"] = {
        "node": {"path": "/etc/webstack/pki/node.crt", "days_left": 12.5,
                 "not_after": "2027-01-01T00:00:00+00:00", "expires_soon": True},
        "ca": {"path": "/etc/webstack/pki/ca.crt", "days_left": 3000, "expires_soon": False},
    }  # fmt: skip
    report = verdict.summarize(cluster(app1=soon), NODES)
    assert report["healthy"] is True
    assert report["warnings"] == [
        "app1: node certificate /etc/webstack/pki/node.crt expires in 12.5 days "
        "(2027-01-01T00:00:00+00:00)"
    ]
