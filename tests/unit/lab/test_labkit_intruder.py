"""The lab's intruder: its address (the network's highest host address, refused when the topology
uses it), its container config (no role, no Salt), and the forged VRRP adverts the e2e tests send
from it (checksums a receiver verifies). No root, no containers."""

import socket
import struct

import pytest
import yaml
from e2e.e2e_intruder import _checksum, vrrp_advert
from labkit import cli, config, intruder, lxc
from labkit.run import LabError
from support.state_tree import REPO

HA_DB = REPO / "topology" / "lab-ha-db.yaml"


@pytest.fixture(autouse=True)
def no_running_lab(tmp_path, monkeypatch):
    for name in ("LAB_TOPOLOGY", "LAB_NODES", "LAB_BRIDGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "STATE_FILE", tmp_path / "no-lab.json")


def lab_with(tmp_path, change):
    raw = yaml.safe_load(HA_DB.read_text())
    change(raw)
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(raw))
    return config.from_file(path)


def test_the_intruder_takes_the_highest_host_address(tmp_path):
    lab = config.from_file(HA_DB)
    assert intruder.address(lab) == "10.77.0.254"
    assert intruder.address(lab) not in {c.address for c in lab.containers}


def test_a_topology_node_on_that_address_is_refused_by_name(tmp_path):
    def take(raw):
        raw["nodes"][-1]["address"] = "10.77.0.254"

    with pytest.raises(LabError, match=r"10\.77\.0\.254 .* used by the topology \(db3\)"):
        intruder.address(lab_with(tmp_path, take))


def test_the_vip_on_that_address_is_refused(tmp_path):
    def take(raw):
        raw["vip"]["address"] = "10.77.0.254"

    with pytest.raises(LabError, match=r"vip\.address"):
        intruder.address(lab_with(tmp_path, take))


def test_a_node_named_intruder_is_refused(tmp_path):
    def name(raw):
        raw["nodes"][-1]["name"] = "intruder"

    with pytest.raises(LabError, match="named 'intruder'"):
        intruder.address(lab_with(tmp_path, name))


def test_its_container_config_is_a_topology_free_clone_on_the_bridge(tmp_path):
    lab = config.from_file(HA_DB)
    node = config.Node(intruder.NAME, intruder.address(lab), [])
    text = lxc.config_text(lab, node, tmp_path / "template") + intruder.MARKER
    assert f"lxc.net.0.ipv4.address = 10.77.0.254/{lab.prefix}" in text
    assert f"lxc.net.0.link = {lab.bridge}" in text
    assert "lxc.mount.entry" not in text  # neither the repo nor the site dir (secrets)
    assert intruder.NAME not in {c.name for c in lab.containers}


def test_the_cli_has_intruder_up_down_status():
    parser = cli.parser()
    for action in ("up", "down", "status"):
        args = parser.parse_args(["intruder", action])
        assert args.func is cli.cmd_intruder and args.action == action
    with pytest.raises(SystemExit):
        parser.parse_args(["intruder", "attack"])


# --------------------------------------------------------------------------------------------------
# Forged VRRP adverts
# --------------------------------------------------------------------------------------------------


def test_a_vrrp_v2_advert_is_rfc_3768_with_a_valid_checksum():
    packet = vrrp_advert(2, 51, 255, ["10.77.0.100"], 1)
    vers_type, vrid, priority, count, auth, interval, _ = struct.unpack("!BBBBBBH", packet[:8])
    assert (vers_type, vrid, priority, count, auth, interval) == (0x21, 51, 255, 1, 0, 1)
    assert packet[8:12] == socket.inet_aton("10.77.0.100") and packet[12:] == b"\0" * 8
    assert _checksum(packet) == 0  # what a receiver computes over the message


def test_a_vrrp_v3_advert_checksums_the_ipv4_pseudo_header():
    src, dst = "10.77.0.254", "10.77.0.11"
    packet = vrrp_advert(3, 51, 255, ["10.77.0.100", "10.77.0.101"], 0.1, src, dst)
    vers_type, vrid, priority, count, interval, _ = struct.unpack("!BBBBHH", packet[:8])
    assert (vers_type, vrid, priority, count, interval) == (0x31, 51, 255, 2, 10)
    assert len(packet) == 8 + 2 * 4
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 112, 16)
    assert _checksum(pseudo + packet) == 0
    # Another destination is another checksum: one packet per destination.
    assert vrrp_advert(3, 51, 255, ["10.77.0.100", "10.77.0.101"], 0.1, src, "224.0.0.18") != packet


def test_an_unknown_vrrp_version_is_an_error():
    with pytest.raises(ValueError, match="expected 2 or 3"):
        vrrp_advert(4, 51, 255, ["10.77.0.100"], 1)
