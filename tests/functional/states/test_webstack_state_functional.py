"""
The webstack.server_state state through Salt's real state system (state.single), against a real
haproxy (admin socket and server-state file in a temp dir) with two real backends on loopback.
"""


def server_state(loaders, lab, name, admin_state, **kwargs):
    return loaders.states.webstack.server_state(
        name=name,
        admin_state=admin_state,
        socket=str(lab.haproxy.socket),
        state_file=str(lab.haproxy.state_file),
        **kwargs,
    )


def test_drain_and_restore_a_server(loaders, haproxy_lab):
    haproxy = haproxy_lab.haproxy

    ret = server_state(loaders, haproxy_lab, "app1", "drain")
    assert ret.result is True, ret.comment
    assert ret.changes == {
        "state": {"old": "ready", "new": "drain"},
        "server_state_file": {"old": None, "new": "drain"},
    }
    assert haproxy.admin_state("app1") == "drain"
    assert haproxy.admin_state("app2") == "ready"

    again = server_state(loaders, haproxy_lab, "app1", "drain")
    assert again.result is True
    assert again.changes == {}
    assert "already drain" in again.comment

    # The state file lets the drain survive a reload (load-server-state-from-file).
    haproxy.reload()
    assert haproxy.admin_state("app1") == "drain"
    assert server_state(loaders, haproxy_lab, "app1", "drain").changes == {}

    restored = server_state(loaders, haproxy_lab, "app1", "ready")
    assert restored.result is True, restored.comment
    assert restored.changes == {
        "state": {"old": "drain", "new": "ready"},
        "server_state_file": {"old": "drain", "new": "ready"},
    }
    assert haproxy.admin_state("app1") == "ready"
    second = server_state(loaders, haproxy_lab, "app1", "ready")
    assert second.result is True
    assert second.changes == {}


def test_test_mode_reports_and_changes_nothing(loaders, haproxy_lab):
    ret = server_state(loaders, haproxy_lab, "app2", "maint", test=True)
    assert ret.result is None
    assert ret.changes["state"] == {"old": "ready", "new": "maint"}
    assert "would be set to maint" in ret.comment
    assert haproxy_lab.haproxy.admin_state("app2") == "ready"
    assert not haproxy_lab.haproxy.state_file.exists()


def test_maint_stops_traffic_and_checks(loaders, haproxy_lab):
    ret = server_state(loaders, haproxy_lab, "app2", "maint")
    assert ret.result is True, ret.comment
    assert haproxy_lab.haproxy.admin_state("app2") == "maint"
    assert haproxy_lab.haproxy.server_status("app2") == "MAINT"
    saved = loaders.modules.webstack.saved_server_state(
        "app2", state_file=str(haproxy_lab.haproxy.state_file)
    )
    assert saved == "maint"


def test_unknown_server_fails_naming_the_known_ones(loaders, haproxy_lab):
    ret = server_state(loaders, haproxy_lab, "app9", "drain")
    assert ret.result is False
    assert "no server 'app9' in backend 'app' (servers: app1, app2)" in ret.comment
