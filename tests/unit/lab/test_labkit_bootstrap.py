"""The lab installs and configures Salt with the bootstrap scripts the Vagrant VMs run: a node's
overlay dir gets, through them, the files the lab wrote itself before (same config, same keys, same
modes), and the template's Salt comes from `bootstrap/install-salt wheelhouse`. No container is
touched: the overlay dirs and the key dir are scratch directories."""

import os

import pytest
import yaml
from labkit import cluster, config, lxc, pki, template
from support.salt_bootstrap import master_config, minion_config, mode
from support.state_tree import REPO


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """The lab of topology/lab.yaml with its overlay dirs and key dir under tmp_path."""
    monkeypatch.setattr(lxc, "delta", lambda name: tmp_path / "lxc" / name / "delta0")
    keys = tmp_path / "pki"
    keys.mkdir(mode=0o700)
    monkeypatch.setattr(pki, "KEYS", keys)
    lab = config.from_file(REPO / "topology" / "lab.yaml")
    pairs = {}
    for name in (config.MASTER_NAME, *lab.minions):
        pem, pub = f"PRIVATE {name}\n", f"PUBLIC {name}\n"
        (keys / f"{name}.pem").write_text(pem)
        (keys / f"{name}.pub").write_text(pub)
        pairs[name] = (pem, pub)
    return lab, pairs, tmp_path / "lxc"


def test_the_master_is_seeded_by_configure_master(lab):
    lab, pairs, lxcdir = lab
    cluster._seed(lab, lab.master, pairs)
    root = lxcdir / "master" / "delta0"
    conf = yaml.safe_load((root / "etc/salt/master.d/webstack.conf").read_text())
    # One worker per accepted minion and one more (each certificate request holds two).
    assert conf == master_config(lab.master.address, len(lab.minions) + 1)
    master_pki = root / "etc/salt/pki/master"
    assert (master_pki / "master.pem").read_text() == pairs["master"][0]
    assert mode(master_pki / "master.pem") == 0o400
    assert (master_pki / "master.pub").read_text() == pairs["master"][1]
    accepted = {p.name: p.read_text() for p in (master_pki / "minions").iterdir()}
    assert accepted == {name: pairs[name][1] for name in lab.minions}
    assert lab.minions[0] == "ca" and "ca" not in {n.name for n in lab.nodes}
    # The lab's own part: salt-master enabled, the node's identity, and the master's own minion
    # (the site CA) with its own key pair, not the master's.
    wants = root / "etc/systemd/system/multi-user.target.wants/salt-master.service"
    assert os.readlink(wants) == "/usr/lib/systemd/system/salt-master.service"
    assert (root / "etc/hostname").read_text() == "master\n"
    assert not (root / "etc/systemd/system/salt-minion.service").exists()
    conf = yaml.safe_load((root / "etc/salt/minion.d/webstack.conf").read_text())
    assert conf == minion_config("ca", lab.master.address)
    minion_pki = root / "etc/salt/pki/minion"
    assert (minion_pki / "minion.pem").read_text() == pairs["ca"][0]
    assert (minion_pki / "minion_master.pub").read_text() == pairs["master"][1]


def test_every_node_is_seeded_by_configure_minion(lab):
    lab, pairs, lxcdir = lab
    for node in lab.nodes:
        cluster._seed(lab, node, pairs)
        root = lxcdir / node.name / "delta0"
        conf = yaml.safe_load((root / "etc/salt/minion.d/webstack.conf").read_text())
        assert conf == minion_config(node.name, lab.master.address)
        minion_pki = root / "etc/salt/pki/minion"
        assert (minion_pki / "minion.pem").read_text() == pairs[node.name][0]
        assert mode(minion_pki / "minion.pem") == 0o400
        assert (minion_pki / "minion.pub").read_text() == pairs[node.name][1]
        assert (minion_pki / "minion_master.pub").read_text() == pairs["master"][1]
        assert (root / "etc/hostname").read_text() == f"{node.name}\n"
        assert not (root / "etc/salt/pki/master").exists()
        assert not (root / "etc/systemd/system/salt-minion.service").exists()


def test_the_seed_marker_follows_the_salt_config_and_the_scripts(lab, tmp_path, monkeypatch):
    lab, _, _ = lab
    node = lab.nodes[0]
    before = cluster._seed_marker(lab, node)
    assert cluster._seed_marker(lab, node) == before
    lab.master.address = "10.77.0.3"
    moved = cluster._seed_marker(lab, node)
    assert moved != before
    script = tmp_path / "configure-minion"
    script.write_bytes(cluster.CONFIGURE_MINION.read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(cluster, "CONFIGURE_MINION", script)
    assert cluster._seed_marker(lab, node) != moved


def test_the_template_installs_salt_with_install_salt_wheelhouse(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(template, "sh", lambda args, **kwargs: calls.append(([*args], kwargs)))
    rootfs, wheels = tmp_path / "rootfs", tmp_path / "wheels"
    template._install_salt(rootfs, wheels)
    assert calls[0][0] == [
        REPO / "bootstrap" / "install-salt",
        "--root",
        rootfs,
        "wheelhouse",
        wheels,
    ]
    assert calls[0][1]["clean"] is True, "none of the caller's environment reaches the chroot"
    assert calls[1][0] == ["chroot", rootfs, "apt-get", "clean"]


def test_a_changed_install_salt_script_builds_another_template(tmp_path, monkeypatch):
    wheels = tmp_path / "lab-wheelhouse-0"
    script = tmp_path / "install-salt"
    script.write_text("#!/bin/sh\n")
    monkeypatch.setattr(template, "INSTALL_SALT", script)
    first = template.path(wheels)
    script.write_text("#!/bin/sh\n# changed\n")
    assert template.path(wheels) != first
