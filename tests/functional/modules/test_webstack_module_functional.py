"""
The webstack execution module through Salt's real loader, against real programs: haproxy with
its admin socket in a temp dir and two HTTP backends on loopback; two keepalived instances in two
network namespaces joined by a veth pair, recording their state with keepalived-notify.
"""

import json
import time

import pytest
from functional.modules import webstack_harness as harness
from salt.exceptions import CommandExecutionError


def servers(loaders, lab):
    health = loaders.modules.webstack.backend_health(role="lb", socket=str(lab.haproxy.socket))
    assert health["lb"]["socket"] == str(lab.haproxy.socket)
    return health["lb"]["backends"]["app"]["servers"]


def test_backend_health_up_down_up(loaders, haproxy_lab):
    def lb_health():
        return loaders.modules.webstack.backend_health(
            role="lb", socket=str(haproxy_lab.haproxy.socket)
        )["lb"]

    def all_up(health):
        return all(s["status"] == "UP" for s in health["backends"]["app"]["servers"].values())

    # On a loaded machine one health check can time out ("UP 1/2", going down): start from a
    # state where every check passed.
    health = harness.wait_for(
        lambda: all_up(h := lb_health()) and h, 10, what="both servers fully UP"
    )
    assert health["healthy"] is True
    assert health["frontends"]["www"]["status"] == "OPEN"
    app = health["backends"]["app"]
    assert (app["status"], app["servers_total"], app["servers_up"]) == ("UP", 2, 2)
    for name, backend in haproxy_lab.backends.items():
        server = app["servers"][name]
        assert server["status"] == "UP"
        assert server["check_status"] == "L7OK"
        assert server["check_code"] == 200
        assert server["admin_state"] == "ready"
        assert server["weight"] == 1
        assert server["sessions"] == 0
        assert server["addr"] == f"127.0.0.1:{backend.port}"

    haproxy_lab.backends["app2"].stop()
    down = harness.wait_for(
        lambda: (s := servers(loaders, haproxy_lab))["app2"]["status"] == "DOWN" and s,
        5,
        what="backend_health to report app2 DOWN",
    )
    assert down["app2"]["up"] is False
    assert down["app2"]["check_status"] in ("L4CON", "SOCKERR")
    assert down["app1"]["status"] == "UP"

    haproxy_lab.backends["app2"].start()
    up = harness.wait_for(
        lambda: (s := servers(loaders, haproxy_lab))["app2"]["status"] == "UP" and s,
        5,
        what="backend_health to report app2 UP again",
    )
    assert up["app2"]["check_status"] == "L7OK"


def test_all_backends_down_is_unhealthy(loaders, haproxy_lab):
    for backend in haproxy_lab.backends.values():
        backend.stop()
    haproxy_lab.wait_status("app1", "DOWN")
    haproxy_lab.wait_status("app2", "DOWN")
    health = loaders.modules.webstack.backend_health(
        role="lb", socket=str(haproxy_lab.haproxy.socket)
    )["lb"]
    assert health["healthy"] is False
    assert health["problems"] == ["backend app: no server in service"]


def test_backend_health_names_a_missing_socket(loaders, tmp_path):
    path = tmp_path / "admin.sock"
    health = loaders.modules.webstack.backend_health(role="lb", socket=str(path))
    assert health["lb"]["healthy"] is False
    assert f"haproxy admin socket {path} does not exist" in health["lb"]["error"]


def test_haproxy_refusals_are_errors(loaders, haproxy_lab):
    socket = str(haproxy_lab.haproxy.socket)
    with pytest.raises(CommandExecutionError, match="no server 'app9' in backend 'app'"):
        loaders.modules.webstack.set_server_state("app9", "drain", socket=socket)
    with pytest.raises(CommandExecutionError, match="Can't find backend"):
        loaders.modules.webstack.haproxy_servers(backend="nosuch", socket=socket)


def test_app_health_through_nginx_and_on_the_gunicorn_socket(loaders, tmp_path):
    nginx = harness.Backend("nginx").start()
    gunicorn = harness.UnixBackend(tmp_path / "gunicorn.sock")
    url = f"http://127.0.0.1:{nginx.port}"
    try:
        app = loaders.modules.webstack.backend_health(
            role="app", url=url, app_socket=str(gunicorn.path)
        )["app"]
        assert (app["healthy"], app["ready"]) == (True, True)
        assert app["nginx"]["healthz"]["body"] == {"status": "ok", "server": "nginx"}
        assert app["gunicorn"]["readyz"]["body"] == {"status": "ok", "server": "gunicorn"}
        assert app["gunicorn"]["socket"] == str(gunicorn.path)
        gunicorn.stop()
        app = loaders.modules.webstack.backend_health(
            role="app", url=url, app_socket=str(gunicorn.path)
        )["app"]
        assert app["healthy"] is False
        assert app["gunicorn"]["healthz"]["url"] == f"unix:{gunicorn.path}/healthz"
        assert app["gunicorn"]["healthz"]["status"] is None
        assert app["nginx"]["healthz"]["ok"] is True
        assert loaders.modules.webstack.wait_healthy(url=url, timeout=2)["status"] == 200
    finally:
        nginx.stop()


def test_wait_healthy_gives_up(loaders):
    with pytest.raises(CommandExecutionError, match="not healthy after 1s"):
        loaders.modules.webstack.wait_healthy(url="http://127.0.0.1:9", timeout=1, interval=0.2)


def vip_owner(loaders, lab, node):
    return loaders.modules.webstack.vip_owner(
        vip=lab.vip,
        interface=node["interface"],
        state_file=str(node["state_file"]),
        netns=node["netns"],
    )


def test_vip_owner_follows_a_keepalived_failover(loaders, vrrp_lab):
    vrrp_lab.start_all()
    master = vrrp_lab.wait_master(timeout=10)
    views = {node["name"]: vip_owner(loaders, vrrp_lab, node) for node in vrrp_lab.nodes}
    owners = [name for name, view in views.items() if view["owner"]]
    assert owners == [master["name"]]
    backup = next(node for node in vrrp_lab.nodes if node is not master)
    assert views[master["name"]]["vrrp_state"] == "MASTER"
    assert views[master["name"]]["interface"] == master["interface"]
    assert views[master["name"]]["priority"] == master["priority"]
    assert views[master["name"]]["consistent"] is True
    assert views[backup["name"]]["vrrp_state"] == "BACKUP"
    assert views[backup["name"]]["consistent"] is True

    stopped_at = time.monotonic()
    vrrp_lab.stop(master)
    new = harness.wait_for(
        lambda: (v := vip_owner(loaders, vrrp_lab, backup))["owner"] and v,
        5,
        interval=0.1,
        what=f"{backup['name']} to take the VIP over",
    )
    took = time.monotonic() - stopped_at
    assert took < 5
    assert new["interface"] == backup["interface"]
    harness.wait_for(
        lambda: vip_owner(loaders, vrrp_lab, backup)["vrrp_state"] == "MASTER",
        5 - took,
        interval=0.1,
        what="the new owner's notify to record MASTER",
    )
    old = vip_owner(loaders, vrrp_lab, master)
    assert old["owner"] is False
    assert old["vrrp_state"] == "UNKNOWN"
    assert "STOP" in old["comment"]


def test_vrrp_lab_removes_its_namespaces_when_a_test_fails(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with harness.VrrpLab(tmp_path, count=2) as lab:
            names = {node["netns"] for node in lab.nodes}
            assert names <= harness.namespaces()
            lab.start_all()
            raise RuntimeError("boom")
    assert not names & harness.namespaces()
    assert all(node["proc"].poll() is not None for node in lab.nodes)


@pytest.mark.skipif(bool(harness.missing_programs("arping")), reason="needs iputils-arping")
def test_vip_owner_sees_a_second_holder_on_the_wire(loaders, vrrp_lab):
    """A peer that keeps the VIP without speaking VRRP (frozen, cut off) shows up in ARP."""
    vrrp_lab.start_all()
    master = vrrp_lab.wait_master(timeout=10)
    backup = next(node for node in vrrp_lab.nodes if node is not master)
    alone = vip_owner(loaders, vrrp_lab, master)
    assert alone["owner"] is True and alone["others"] == [], alone
    assert alone["consistent"] is True

    harness._ip(
        "-n", backup["netns"], "addr", "add", f"{vrrp_lab.vip}/24", "dev", backup["interface"]
    )
    link = harness._ip("-n", backup["netns"], "-j", "link", "show", "dev", backup["interface"])
    backup_mac = json.loads(link.stdout)[0]["address"]
    split = vip_owner(loaders, vrrp_lab, master)
    assert [other["mac"] for other in split["others"]] == [backup_mac], split
    assert split["consistent"] is False
    assert "SPLIT BRAIN" in split["comment"]
