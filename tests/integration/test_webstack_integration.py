"""
The webstack module and runner through a real master and minion: the calls made through the
master return what the in-process (functional) calls return, and ``salt-run webstack.status``
judges the cluster with its exit code.
"""

from functional.modules import webstack_harness as harness

VOLATILE = {"sessions", "requests", "last_check"}


def stable(data):
    """The data without counters that move between two calls."""
    if isinstance(data, dict):
        return {k: stable(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [stable(v) for v in data]
    return data


def test_vip_owner_through_the_master(salt_master, salt_minion, functional, ready_lb):
    vrrp, _ = ready_lb
    # Everything comes from pillar: the VIP from the topology, the state file and the network
    # namespace keepalived runs in from webstack:lookup.
    through_master = salt_master.salt_cli().run("webstack.vip_owner", minion_tgt=salt_minion.id)
    assert through_master.returncode == 0, through_master.stderr
    expected = functional.webstack.vip_owner()
    assert through_master.data == expected
    assert expected["owner"] is True
    assert expected["vrrp_state"] == "MASTER"
    assert expected["vip"] == vrrp.vip  # from the topology in pillar
    assert expected["lb"] is True

    called = salt_minion.salt_call_cli().run("webstack.vip_owner")
    assert called.returncode == 0, called.stderr
    assert called.data == expected


def test_backend_health_through_the_master(salt_master, salt_minion, functional, ready_lb):
    _, haproxy = ready_lb

    def both():
        through_master = salt_master.salt_cli().run(
            "webstack.backend_health", minion_tgt=salt_minion.id
        )
        assert through_master.returncode == 0, through_master.stderr
        pairs.append((stable(through_master.data), stable(functional.webstack.backend_health())))
        return pairs[-1][0] == pairs[-1][1]

    # Equal once no health check changes a server's state between the two calls.
    pairs = []
    try:
        harness.wait_for(both, 10, what="the same answer through the master and in-process")
    except AssertionError:
        assert pairs[-1][0] == pairs[-1][1]  # pytest shows the difference
        raise
    lb_health = pairs[-1][1]["lb"]
    assert lb_health["socket"] == str(haproxy.haproxy.socket)  # from webstack:lookup in pillar
    assert lb_health["healthy"] is True
    assert sorted(lb_health["backends"]["app"]["servers"]) == ["app1", "app2"]


def test_server_state_through_the_master(salt_master, salt_minion, ready_lb):
    _, haproxy = ready_lb
    cli = salt_master.salt_cli()
    args = ("webstack.server_state", "app2", "admin_state=drain")
    first = cli.run("state.single", *args, minion_tgt=salt_minion.id)
    assert first.returncode == 0, first.stdout
    (result,) = first.data.values()
    assert result["changes"]["state"] == {"old": "ready", "new": "drain"}
    assert haproxy.haproxy.admin_state("app2") == "drain"
    second = cli.run("state.single", *args, minion_tgt=salt_minion.id)
    (result,) = second.data.values()
    assert result["result"] is True and result["changes"] == {}
    back = cli.run(
        "state.single",
        "webstack.server_state",
        "app2",
        "admin_state=ready",
        minion_tgt=salt_minion.id,
    )
    assert back.returncode == 0, back.stdout
    assert haproxy.haproxy.admin_state("app2") == "ready"


def test_cluster_status_exits_non_zero_when_unhealthy(salt_master, salt_minion, ready_lb):
    vrrp, _ = ready_lb
    ret = salt_master.salt_run_cli(timeout=120).run("webstack.status", "timeout=10", "details=True")
    # One lb answers and holds the VIP; app1, app2 and db1 are in the topology but not minions.
    assert ret.returncode == 1, ret.stdout
    report = ret.data
    assert report["vip"]["owners"] == [salt_minion.id]
    assert report["backends"][salt_minion.id]["app"]["app1"]["status"] == "UP"
    assert report["problems"] == ["DB down: no db node answered (silent: db1)"]
    assert "app1: no answer" in report["warnings"]
    assert f"VIP {vrrp.vip}: held by {salt_minion.id}" in report["table"]
