"""
``webstack_vip`` on what keepalived (through keepalived-notify) and iproute2 really print, captured
by the suite (see conftest.py: needs root and keepalived); ``cmd.run_all`` answers with those
captures.
"""

from unittest import mock

from functional.modules import webstack_harness as harness
from support import vip_loader
from support.webstack_nodes import lb_node as _node

vip = vip_loader.vip
# The loader's dunders for lb1 (fixtures of support.vip_loader).
salt_mocks = vip_loader.salt_mocks
configure_loader_modules = vip_loader.configure_loader_modules


def test_vrrp_state_records(keepalived_capture):
    master = vip.parse_vrrp_state(keepalived_capture["vrrp master"])
    assert master["instance"] == harness.INSTANCE
    assert master["type"] == "INSTANCE"
    assert master["state"] == "MASTER"
    assert master["priority"] == keepalived_capture["priority"]
    assert isinstance(master["since"], int)
    assert vip.parse_vrrp_state(keepalived_capture["vrrp stop"])["state"] == "STOP"


def test_ip_addresses(keepalived_capture):
    addresses = vip.parse_ip_addresses(keepalived_capture["ip addr master"])
    assert f"{keepalived_capture['vip']}/24" in addresses[keepalived_capture["interface"]]
    assert "127.0.0.1/8" in addresses["lo"]
    stopped = vip.parse_ip_addresses(keepalived_capture["ip addr stopped"])
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
        return vip.vip_owner(state_file=str(state_file), **kwargs)


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
    ret = vip.vip_owner()
    assert ret["lb"] is False
    assert ret["owner"] is False
    assert "not an lb node (roles: app)" in ret["comment"]
