"""Unit tests of the pure parsers and VIP decisions of _utils/webstack_net.py (the same parsers on
real outputs: tests/functional/modules/test_webstack_vip_captures.py)."""

import json

import pytest
from salt.exceptions import CommandExecutionError
from support.salt_modules import UTILS_MODULES

net = UTILS_MODULES["webstack_net"]


@pytest.mark.parametrize("text", ["", "MASTER", "[1, 2]", '{"state": "MASTER"}'])
def test_vrrp_state_rejects_garbage(text):
    with pytest.raises(CommandExecutionError):
        net.parse_vrrp_state(text)


def test_arping_replies():
    text = (
        "ARPING 10.0.0.100 from 0.0.0.0 eth0\n"
        "Unicast reply from 10.0.0.100 [AA:BB:CC:00:11:22]  0.610ms\n"
        "Unicast reply from 10.0.0.100 [aa:bb:cc:00:11:22]  0.7ms\n"
        "Sent 2 probes (2 broadcast(s))\n"
    )
    assert net.parse_arping(text) == ["aa:bb:cc:00:11:22"]
    assert net.parse_arping("") == []


def test_link_macs_and_their_failure():
    links = [{"ifname": "lo", "address": "00:00:00:00:00:00"}, {"address": "AA:BB:CC:DD:EE:FF"}]
    assert net.parse_link_macs(json.dumps(links)) == {"00:00:00:00:00:00", "aa:bb:cc:dd:ee:ff"}
    with pytest.raises(CommandExecutionError, match="'ip -j link' did not print JSON"):
        net.parse_link_macs("Error: garbage")


def test_name_macs_from_the_neighbour_table():
    neighbours = [
        {"dst": "10.0.0.12", "lladdr": "AA:00:00:00:00:02"},
        {"dst": "fe80::2", "lladdr": "aa:00:00:00:00:02"},
        {"dst": "10.0.0.99", "lladdr": "aa:00:00:00:00:09"},
    ]
    nodes = [{"name": "lb1", "address": "10.0.0.11"}, {"name": "lb2", "address": "10.0.0.12"}]
    named = net.name_macs(["aa:00:00:00:00:02", "aa:00:00:00:00:09", "aa:ff"], neighbours, nodes)
    assert named == [
        {"mac": "aa:00:00:00:00:02", "addresses": ["10.0.0.12", "fe80::2"], "node": "lb2"},
        {"mac": "aa:00:00:00:00:09", "addresses": ["10.0.0.99"], "node": None},
        {"mac": "aa:ff", "addresses": [], "node": None},
    ]


def test_holders_and_a_vip_that_is_no_address():
    addresses = {"lo": ["127.0.0.1/8"], "eth0": ["10.0.0.11/24", "10.0.0.100/24"]}
    assert net.holders(addresses, "10.0.0.100") == ["eth0"]
    assert net.holders(addresses, "10.0.0.101") == []
    with pytest.raises(CommandExecutionError, match="not an IP address"):
        net.holders(addresses, "vip.example")


@pytest.mark.parametrize(
    ("owner", "state", "consistent"),
    [(True, "MASTER", True), (False, "BACKUP", True), (True, "BACKUP", False),
     (False, "MASTER", False), (True, "STOP", False), (False, "STOP", True)],
)  # fmt: skip
def test_cross_check_vrrp(owner, state, consistent):
    ret = {"owner": owner, "vrrp_state": "UNKNOWN", "priority": 1, "consistent": True}
    record = {"instance": "webstack", "state": state, "priority": 150, "since": 7}
    comments = net.cross_check_vrrp(ret, record, None, "webstack", "/run/vrrp.json")
    assert ret["consistent"] is consistent
    assert (ret["priority"], ret["since"]) == (150, 7)
    assert bool(comments) is (not consistent or state == "STOP")
