"""
Unit tests of _modules/webstack.py: the parsers run on outputs the suite captured from the real
haproxy, keepalived (through keepalived-notify) and iproute2 (see conftest.py); the VIP logic runs
on those captures with Salt's dunders mocked.
"""

import inspect
import json
import random
from unittest import mock

import pytest
import yaml
from functional.modules import webstack_harness as harness
from salt.exceptions import CommandExecutionError

webstack = harness.load_source("_modules", "webstack_module")


def _node(roles=("lb",), vip="10.99.1.100", interface="eth0", priority=200):
    return {
        "valid": True,
        "name": "lb1",
        "roles": list(roles),
        "self": {"name": "lb1", "address": "10.99.1.1", "roles": list(roles)},
        "vip": {"address": vip, "prefix": 24, "interface": interface, "router_id": 51},
        "priority": priority,
        "ports": {"app": 80, "mongodb": 27017, "postgresql": 5432},
    }


@pytest.fixture
def salt_mocks():
    return {
        "webstack_topology.node": mock.MagicMock(return_value=_node()),
        "cmd.run_all": mock.MagicMock(),
    }


@pytest.fixture
def configure_loader_modules(salt_mocks):
    return {webstack: {"__salt__": salt_mocks, "__pillar__": {}, "__grains__": {"id": "lb1"}}}


# --------------------------------------------------------------------------------------------------
# haproxy: show stat (CSV by header) and show servers state
# --------------------------------------------------------------------------------------------------


def test_show_stat_rows_are_keyed_by_the_csv_header(haproxy_capture):
    rows = webstack.parse_stat_csv(haproxy_capture["show stat"])
    by_name = {(r["pxname"], r["svname"]): r for r in rows}
    assert set(by_name) == {
        ("www", "FRONTEND"),
        ("app", "app1"),
        ("app", "app2"),
        ("app", "BACKEND"),
    }
    assert by_name["www", "FRONTEND"]["status"] == "OPEN"
    assert by_name["app", "app1"]["status"] == "DRAIN"
    assert by_name["app", "app1"]["check_status"] == "L7OK"
    assert by_name["app", "app1"]["check_code"] == "200"
    assert by_name["app", "app2"]["status"] == "DOWN"
    assert by_name["app", "app2"]["check_status"] in ("L4CON", "SOCKERR")  # refused, or reset
    assert by_name["app", "app2"]["addr"].startswith("127.0.0.1:")
    # haproxy 2.6's header ends with "-" and a trailing comma: neither becomes a key.
    assert all("" not in row and "-" not in row for row in rows)


def test_show_stat_parsing_does_not_depend_on_column_order(haproxy_capture):
    lines = haproxy_capture["show stat"].strip().splitlines()
    header = lines[0][2:].split(",")
    rows = [line.split(",") for line in lines[1:]]
    order = list(range(len(header)))
    random.Random(4).shuffle(order)
    shuffled = "\n".join(
        ["# " + ",".join(header[i] for i in order)]
        + [",".join(row[i] for i in order) for row in rows]
    )
    assert webstack.parse_stat_csv(shuffled) == webstack.parse_stat_csv(
        haproxy_capture["show stat"]
    )


def test_show_stat_rejects_an_answer_without_header(haproxy_capture):
    with pytest.raises(CommandExecutionError, match="header"):
        webstack.parse_stat_csv(haproxy_capture["set unknown server"])


def test_servers_state_is_decoded(haproxy_capture):
    servers = {
        s["srv_name"]: s
        for s in webstack.parse_servers_state(haproxy_capture["show servers state"])
    }
    assert set(servers) == {"app1", "app2"}
    assert servers["app1"]["be_name"] == "app"
    assert servers["app1"]["admin_state"] == "drain"
    assert servers["app1"]["op_state"] == "running"
    assert servers["app1"]["check_result"] == "passed"
    assert servers["app2"]["admin_state"] == "ready"
    assert servers["app2"]["op_state"] == "stopped"
    assert servers["app2"]["check_result"] == "failed"
    assert isinstance(servers["app2"]["srv_port"], int)


def test_servers_state_refuses_an_unknown_format_version(haproxy_capture):
    text = haproxy_capture["show servers state"].replace("1\n", "2\n", 1)
    with pytest.raises(CommandExecutionError, match="version '2'"):
        webstack.parse_servers_state(text)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [(0, "ready"), (0x01, "maint"), (0x02, "maint"), (0x04, "maint"), (0x20, "maint"),
     (0x08, "drain"), (0x10, "drain"), (0x09, "maint"), (0x40, "ready")],
)  # fmt: skip
def test_admin_state_mask(mask, expected):
    assert webstack._admin_state(mask) == expected


def test_haproxy_command_names_a_missing_socket(tmp_path):
    path = tmp_path / "nowhere.sock"
    with pytest.raises(CommandExecutionError, match=str(path)):
        webstack.haproxy_command("show info", socket=str(path))


def test_haproxy_command_refuses_command_chains(tmp_path):
    with pytest.raises(CommandExecutionError, match="one command"):
        webstack.haproxy_command("show info; shutdown frontend www", socket=str(tmp_path))


def test_set_server_state_validates_its_arguments(tmp_path):
    with pytest.raises(CommandExecutionError, match="not one of"):
        webstack.set_server_state("app1", "down", socket=str(tmp_path))
    with pytest.raises(CommandExecutionError, match="valid haproxy name"):
        webstack.set_server_state("app1 state maint;", "drain", socket=str(tmp_path))


def test_saved_server_state_reads_the_capture(tmp_path, haproxy_capture):
    state_file = tmp_path / "server-state"
    state_file.write_text(haproxy_capture["show servers state"])
    assert webstack.saved_server_state("app1", state_file=str(state_file)) == "drain"
    assert webstack.saved_server_state("app2", state_file=str(state_file)) == "ready"
    assert webstack.saved_server_state("app3", state_file=str(state_file)) is None
    assert webstack.saved_server_state("app1", state_file=str(tmp_path / "missing")) is None


# --------------------------------------------------------------------------------------------------
# keepalived: the notify script's record, iproute2's addresses, vip_owner's cross-check
# --------------------------------------------------------------------------------------------------


def test_vrrp_state_records(keepalived_capture):
    master = webstack.parse_vrrp_state(keepalived_capture["vrrp master"])
    assert master["instance"] == harness.INSTANCE
    assert master["type"] == "INSTANCE"
    assert master["state"] == "MASTER"
    assert master["priority"] == keepalived_capture["priority"]
    assert isinstance(master["since"], int)
    assert webstack.parse_vrrp_state(keepalived_capture["vrrp stop"])["state"] == "STOP"


@pytest.mark.parametrize("text", ["", "MASTER", "[1, 2]", '{"state": "MASTER"}'])
def test_vrrp_state_rejects_garbage(text):
    with pytest.raises(CommandExecutionError):
        webstack.parse_vrrp_state(text)


def test_ip_addresses(keepalived_capture):
    addresses = webstack.parse_ip_addresses(keepalived_capture["ip addr master"])
    assert f"{keepalived_capture['vip']}/24" in addresses[keepalived_capture["interface"]]
    assert "127.0.0.1/8" in addresses["lo"]
    stopped = webstack.parse_ip_addresses(keepalived_capture["ip addr stopped"])
    assert f"{keepalived_capture['vip']}/24" not in stopped[keepalived_capture["interface"]]


def _vip_owner(salt_mocks, tmp_path, capture, ip_key, vrrp_key, **kwargs):
    salt_mocks["cmd.run_all"].return_value = {"retcode": 0, "stdout": capture[ip_key], "stderr": ""}
    state_file = tmp_path / "vrrp.json"
    if vrrp_key:
        state_file.write_text(capture[vrrp_key])
    salt_mocks["webstack_topology.node"].return_value = _node(
        vip=capture["vip"], interface=capture["interface"], priority=150
    )
    # The ARP probe for a second holder is covered against a real arping (functional tests).
    with mock.patch("salt.utils.path.which", return_value=None):
        return webstack.vip_owner(state_file=str(state_file), **kwargs)


def test_vip_owner_master(salt_mocks, tmp_path, keepalived_capture):
    ret = _vip_owner(salt_mocks, tmp_path, keepalived_capture, "ip addr master", "vrrp master")
    assert ret["owner"] is True
    assert ret["vrrp_state"] == "MASTER"
    assert ret["vip"] == keepalived_capture["vip"]
    assert ret["interface"] == keepalived_capture["interface"]
    assert ret["priority"] == keepalived_capture["priority"]  # keepalived's, not the topology's
    assert ret["consistent"] is True
    assert ret["lb"] is True
    assert salt_mocks["cmd.run_all"].call_args.args[0] == ["ip", "-j", "addr", "show"]
    assert ret["others"] is None and "arping" in ret["comment"]


def test_vip_owner_after_a_clean_stop(salt_mocks, tmp_path, keepalived_capture):
    ret = _vip_owner(salt_mocks, tmp_path, keepalived_capture, "ip addr stopped", "vrrp stop")
    assert ret["owner"] is False
    assert ret["vrrp_state"] == "UNKNOWN"
    assert ret["consistent"] is True
    assert "STOP" in ret["comment"]


def test_vip_owner_flags_a_vip_keepalived_does_not_account_for(
    salt_mocks, tmp_path, keepalived_capture
):
    ret = _vip_owner(salt_mocks, tmp_path, keepalived_capture, "ip addr master", "vrrp stop")
    assert ret["owner"] is True
    assert ret["consistent"] is False


def test_vip_owner_without_state_file_names_it(salt_mocks, tmp_path, keepalived_capture):
    ret = _vip_owner(salt_mocks, tmp_path, keepalived_capture, "ip addr stopped", None)
    assert ret["owner"] is False
    assert ret["vrrp_state"] == "UNKNOWN"
    assert ret["priority"] == 150  # the topology's
    assert str(tmp_path / "vrrp.json") in ret["comment"]


def test_vip_owner_wrong_instance(salt_mocks, tmp_path, keepalived_capture):
    ret = _vip_owner(
        salt_mocks, tmp_path, keepalived_capture, "ip addr master", "vrrp master", instance="other"
    )
    assert ret["vrrp_state"] == "UNKNOWN"
    assert "'other'" in ret["comment"]


def test_vip_owner_in_a_namespace(salt_mocks, tmp_path, keepalived_capture):
    _vip_owner(
        salt_mocks, tmp_path, keepalived_capture, "ip addr master", "vrrp master", netns="ns1"
    )
    assert salt_mocks["cmd.run_all"].call_args.args[0] == ["ip", "-n", "ns1", "-j", "addr", "show"]


def test_vip_owner_on_a_node_that_is_not_an_lb(salt_mocks, keepalived_capture):
    salt_mocks["cmd.run_all"].return_value = {
        "retcode": 0,
        "stdout": keepalived_capture["ip addr stopped"],
        "stderr": "",
    }
    salt_mocks["webstack_topology.node"].return_value = _node(
        roles=["app"], vip=keepalived_capture["vip"]
    )
    ret = webstack.vip_owner()
    assert ret["lb"] is False
    assert ret["owner"] is False
    assert "not an lb node (roles: app)" in ret["comment"]


def test_vip_owner_ip_failure_is_an_error(salt_mocks):
    salt_mocks["cmd.run_all"].return_value = {"retcode": 1, "stdout": "", "stderr": "no netns"}
    with pytest.raises(CommandExecutionError, match="no netns"):
        webstack.vip_owner()


# --------------------------------------------------------------------------------------------------
# Configuration, loading, documentation
# --------------------------------------------------------------------------------------------------


def _leaves(data, prefix=()):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def test_defaults_match_the_state_trees_defaults():
    defaults = yaml.safe_load((harness.REPO / "salt/webstack/parameters/defaults.yaml").read_text())
    for path, value in _leaves(webstack.DEFAULTS):
        expected = defaults["webstack"]
        for part in path:
            expected = expected[part]
        assert value == expected, ":".join(path)


def test_lookup_prefers_pillar():
    with mock.patch.dict(
        webstack.__pillar__,
        {"webstack": {"lookup": {"lb": {"haproxy": {"admin_socket": "/tmp/x.sock"}}}}},
    ):
        assert webstack._lookup("lb:haproxy:admin_socket") == "/tmp/x.sock"
        assert webstack._lookup("lb:haproxy:server_state_file") == "/var/lib/haproxy/server-state"


def test_virtual_needs_iproute2():
    with mock.patch("salt.utils.path.which", return_value=None):
        loaded, reason = webstack.__virtual__()
    assert loaded is False
    assert "iproute2" in reason
    assert webstack.__virtual__() == "webstack"


def test_backend_health_on_a_minion_outside_the_topology(salt_mocks):
    salt_mocks["webstack_topology.node"].return_value = {
        "valid": False,
        "errors": ["webstack:topology: missing"],
        "roles": [],
    }
    ret = webstack.backend_health()
    assert "no role in the topology" in ret["comment"]
    assert "webstack:topology: missing" in ret["comment"]


def test_backend_health_reports_a_missing_socket_per_role(tmp_path):
    ret = webstack.backend_health(role="lb", socket=str(tmp_path / "admin.sock"))
    assert ret["lb"]["healthy"] is False
    assert str(tmp_path / "admin.sock") in ret["lb"]["error"]


def test_postgresql_health_uses_pg_isready_and_peer_auth(salt_mocks):
    salt_mocks["cmd.run_all"].side_effect = [
        {"retcode": 0, "stdout": "/var/run/postgresql:5432 - accepting connections", "stderr": ""},
        {"retcode": 0, "stdout": "f\n", "stderr": ""},
    ]
    with mock.patch("salt.utils.path.which", return_value="/usr/bin/pg_isready"):
        ret = webstack.backend_health(role="db", engine="ferretdb")
    assert ret["db"] == {
        "engine": "ferretdb",
        "port": 5432,
        "accepting": True,
        "pg_isready": "/var/run/postgresql:5432 - accepting connections",
        "role": "primary",
        "healthy": True,
    }
    psql = salt_mocks["cmd.run_all"].call_args_list[1]
    assert psql.args[0][0] == "psql"
    assert psql.kwargs["runas"] == "postgres"


@pytest.mark.parametrize("module_name", ["_modules", "_runners"])
def test_every_public_function_documents_a_cli_example(module_name):
    module = harness.load_source(module_name, f"webstack_{module_name.strip('_')}_doc")
    public = [
        (name, func)
        for name, func in inspect.getmembers(module, inspect.isfunction)
        if not name.startswith("_") and func.__module__ == module.__name__
    ]
    assert public
    for name, func in public:
        assert "CLI Example:" in (func.__doc__ or ""), name


def test_http_get_reports_a_refused_connection():
    answer = webstack._http_get("/healthz", url="http://127.0.0.1:9")
    assert answer["ok"] is False
    assert answer["status"] is None
    assert answer["url"] == "http://127.0.0.1:9/healthz"
    json.dumps(answer)  # serialisable for the minion's return
