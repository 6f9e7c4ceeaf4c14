"""Unit tests of _modules/webstack_vip.py with ``cmd.run_all`` mocked (on real outputs of
keepalived and iproute2: tests/functional/modules/test_webstack_vip_captures.py)."""

import json
from unittest import mock

import pytest
from salt.exceptions import CommandExecutionError
from support import vip_loader
from support.webstack_nodes import lb_node

vip = vip_loader.vip
# The loader's dunders for lb1 (fixtures of support.vip_loader).
salt_mocks = vip_loader.salt_mocks
configure_loader_modules = vip_loader.configure_loader_modules

VIP = "10.99.1.100"
ADDR = [{"ifname": "eth0", "addr_info": [{"local": "10.99.1.1", "prefixlen": 24},
                                         {"local": VIP, "prefixlen": 24}]}]  # fmt: skip
ARPING = "Unicast reply from 10.99.1.100 [aa:00:00:00:00:01]  0.5ms\n"


def ok(stdout):
    return {"retcode": 0, "stdout": stdout, "stderr": ""}


def answers(link):
    """``cmd.run_all`` for ``ip -j addr``, arping (one reply, from our own MAC) and ``link``."""

    def run(cmd, **_kwargs):
        if "addr" in cmd:
            return ok(json.dumps(ADDR))
        if any("arping" in part for part in cmd):
            return {"retcode": 1, "stdout": ARPING, "stderr": ""}
        if "link" in cmd:
            return link
        return ok("[]")

    return run


def test_vip_owner_ip_failure_is_an_error(salt_mocks):
    salt_mocks["cmd.run_all"].return_value = {"retcode": 1, "stdout": "", "stderr": "no netns"}
    with pytest.raises(CommandExecutionError, match="no netns"):
        vip.vip_owner()


def test_own_macs_are_not_a_second_holder(salt_mocks, tmp_path):
    salt_mocks["cmd.run_all"].side_effect = answers(ok('[{"address": "AA:00:00:00:00:01"}]'))
    with mock.patch("salt.utils.path.which", return_value="/usr/sbin/arping"):
        ret = vip.vip_owner(state_file=str(tmp_path / "vrrp.json"))
    assert ret["owner"] is True and ret["others"] == []
    assert "SPLIT BRAIN" not in ret["comment"]


def test_unknown_own_macs_are_no_verdict_not_a_split_brain(salt_mocks, tmp_path, caplog):
    """``ip -j link`` failing used to leave no own MACs: every reply read as a second holder."""
    link = {"retcode": 1, "stdout": "", "stderr": "Cannot open netlink socket"}
    salt_mocks["cmd.run_all"].side_effect = answers(link)
    with mock.patch("salt.utils.path.which", return_value="/usr/sbin/arping"):
        ret = vip.vip_owner(state_file=str(tmp_path / "vrrp.json"))
    assert ret["owner"] is True and ret["others"] is None
    assert "SPLIT BRAIN" not in ret["comment"]
    assert "no check for a second VIP holder" in ret["comment"]
    assert "Cannot open netlink socket" in ret["comment"]
    assert "Cannot open netlink socket" in caplog.text


def test_another_holder_is_a_split_brain_named_from_the_neighbour_table(salt_mocks, tmp_path):
    def run(cmd, **_kwargs):
        if "neigh" in cmd:
            return ok('[{"dst": "10.99.1.2", "lladdr": "aa:00:00:00:00:01"}]')
        return answers(ok('[{"address": "aa:00:00:00:00:99"}]'))(cmd)

    salt_mocks["cmd.run_all"].side_effect = run
    node = lb_node()
    node["nodes"] = [{"name": "lb2", "address": "10.99.1.2"}]
    salt_mocks["webstack_topology.node"].return_value = node
    with mock.patch("salt.utils.path.which", return_value="/usr/sbin/arping"):
        ret = vip.vip_owner(state_file=str(tmp_path / "vrrp.json"))
    assert ret["others"] == [
        {"mac": "aa:00:00:00:00:01", "addresses": ["10.99.1.2"], "node": "lb2"}
    ]
    assert ret["consistent"] is False
    assert f"SPLIT BRAIN: lb2 also answer ARP for the VIP {VIP}" in ret["comment"]


def test_no_vip_in_the_topology(salt_mocks):
    salt_mocks["webstack_topology.node"].return_value = lb_node(vip=None)
    ret = vip.vip_owner()
    assert ret["consistent"] is False and "no VIP to look for" in ret["comment"]


def test_virtual_needs_iproute2():
    with mock.patch("salt.utils.path.which", return_value=None):
        loaded, reason = vip.__virtual__()
    assert loaded is False
    assert "iproute2" in reason
    assert vip.__virtual__() == "webstack_vip"
