"""The bootstrap scripts the Vagrant VMs and the LXC lab share, run for real with ``--root`` into a
scratch directory: the Salt config they write, the preseeded key files and their modes, and (with
``--dry-run``) the commands that would install Salt."""

import grp
import os
import shlex
import subprocess

import pytest
import yaml
from support.salt_bootstrap import BOOTSTRAP, master_config, minion_config, mode
from support.salt_bootstrap import run_script as run

#: What the lab wrote before it used the scripts: the scripts must keep it, key for key.
# Two minions accepted: Salt's own default of 5 workers is the floor.
MASTER_CONFIG = master_config("10.77.0.2", 5)
MINION_CONFIG = minion_config("lb1", "10.77.0.2")


@pytest.fixture
def keys(tmp_path):
    """A key dir as the lab (salt-key --gen-keys) and the Vagrantfile (Ruby) make it."""
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    for name in ("master", "lb1", "lb2", "app1"):
        (directory / f"{name}.pem").write_text(f"-----BEGIN RSA PRIVATE KEY-----\n{name}\n")
        (directory / f"{name}.pub").write_text(f"-----BEGIN PUBLIC KEY-----\n{name}\n")
        (directory / f"{name}.pem").chmod(0o400)
    return directory


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    path.mkdir()
    return path


def test_shellcheck_is_clean_on_every_bootstrap_script():
    scripts = sorted(BOOTSTRAP.iterdir())
    assert {p.name for p in scripts} >= {"install-salt", "configure-master", "configure-minion"}
    proc = subprocess.run(["shellcheck", *scripts], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_configure_master_writes_the_labs_config_and_accepts_exactly_the_given_minions(root, keys):
    pki = root / "etc/salt/pki/master"
    (pki / "minions").mkdir(parents=True)
    (pki / "minions" / "gone").write_text("a node no longer in the topology\n")
    run(
        "configure-master",
        *("--root", root, "--interface", "10.77.0.2", "--keys", keys),
        *("--accept", "lb1", "--accept", "app1"),
    )
    conf = root / "etc/salt/master.d/webstack.conf"
    assert yaml.safe_load(conf.read_text()) == MASTER_CONFIG
    assert mode(conf) == 0o644
    assert (pki / "master.pem").read_text() == (keys / "master.pem").read_text()
    assert (pki / "master.pub").read_text() == (keys / "master.pub").read_text()
    assert mode(pki / "master.pem") == 0o400
    assert mode(pki / "master.pub") == 0o644
    assert sorted(p.name for p in (pki / "minions").iterdir()) == ["app1", "lb1"]
    for minion in ("lb1", "app1"):
        assert (pki / "minions" / minion).read_text() == (keys / f"{minion}.pub").read_text()
        assert mode(pki / "minions" / minion) == 0o644
    # Nothing else: no minion side, no site dir unless asked.
    assert not (root / "etc/salt/pki/minion").exists()
    assert not (root / "srv").exists()


def test_configure_master_installs_the_site_dir_for_the_masters_group_only(root, keys, tmp_path):
    site = tmp_path / "site"
    (site / "files" / "ferretdb").mkdir(parents=True)
    (site / "topology.yaml").write_text("name: t\n")
    (site / "webstack_secrets.sls").write_text("webstack: {secrets: {}}\n")
    (site / "files" / "ferretdb" / "ferretdb").write_text("#!/bin/sh\n")
    (site / "files" / "ferretdb" / "ferretdb").chmod(0o755)
    base = ("--root", root, "--interface", "192.168.50.10", "--keys", keys)
    run("configure-master", *base, "--site", site)
    target = root / "srv/webstack-site"
    assert (target / "topology.yaml").read_text() == "name: t\n"
    group = grp.getgrgid(os.stat(root / "etc/salt/pki/master").st_gid).gr_name
    for path in [target, *target.rglob("*")]:
        assert grp.getgrgid(path.stat().st_gid).gr_name == group, path
        assert mode(path) & 0o007 == 0, f"{path} is readable by others"
    assert mode(target / "webstack_secrets.sls") == 0o640
    assert mode(target / "files" / "ferretdb" / "ferretdb") == 0o750
    assert mode(target) == 0o750
    # A second run replaces the site dir: a file gone from the source is gone from the master.
    (site / "webstack_secrets.sls").unlink()
    run("configure-master", *base, "--site", site)
    assert not (target / "webstack_secrets.sls").exists()
    assert (target / "files").is_dir()


def test_configure_minion_writes_the_labs_config_and_the_preseeded_keys(root, keys):
    run("configure-minion", "--root", root, "--id", "lb1", "--master", "10.77.0.2", "--keys", keys)
    conf = root / "etc/salt/minion.d/webstack.conf"
    assert yaml.safe_load(conf.read_text()) == MINION_CONFIG
    assert mode(conf) == 0o644
    pki = root / "etc/salt/pki/minion"
    expected = {"minion.pem": "lb1.pem", "minion.pub": "lb1.pub", "minion_master.pub": "master.pub"}
    assert sorted(p.name for p in pki.iterdir()) == sorted(expected)
    for name, source in expected.items():
        assert (pki / name).read_text() == (keys / source).read_text()
    assert mode(pki / "minion.pem") == 0o400
    assert mode(pki / "minion.pub") == 0o644
    assert mode(pki / "minion_master.pub") == 0o644
    assert not (root / "etc/salt/pki/master").exists()


@pytest.mark.parametrize("name", ["on", "yes", "123", "null"])
def test_minion_ids_that_yaml_would_read_as_other_types_stay_strings(root, keys, name):
    for suffix in ("pem", "pub"):
        (keys / f"{name}.{suffix}").write_text("key\n")
    run("configure-minion", "--root", root, "--id", name, "--master", "10.0.0.2", "--keys", keys)
    conf = yaml.safe_load((root / "etc/salt/minion.d/webstack.conf").read_text())
    assert conf["id"] == name


@pytest.mark.parametrize(
    ("accepted", "given", "expected"),
    [(9, None, 10), (9, "3", 3), (0, None, 5), (40, None, 32), (40, "48", 48)],
)
def test_the_master_gets_a_worker_per_minion_and_one_more(root, keys, accepted, given, expected):
    """Every node's certificate request holds one worker while it waits for a second: fewer
    workers than converging minions stall them (README "Scale")."""
    ids = [f"app{n}" for n in range(accepted)]
    for minion in ids:
        (keys / f"{minion}.pub").write_text(f"PUBLIC {minion}\n")
    run(
        "configure-master",
        *("--root", root, "--interface", "10.77.0.2", "--keys", keys),
        *(arg for minion in ids for arg in ("--accept", minion)),
        *(("--worker-threads", given) if given else ()),
    )
    conf = yaml.safe_load((root / "etc/salt/master.d/webstack.conf").read_text())
    assert conf["worker_threads"] == expected


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        (
            "configure-minion",
            ["--id", "lb9", "--master", "10.0.0.2"],
            "lb9.pem: missing",
        ),
        ("configure-minion", ["--id", "Lb1", "--master", "10.0.0.2"], "not a valid minion id"),
        ("configure-minion", ["--id", "lb1", "--master", "master.lan"], "not an IPv4 address"),
        ("configure-minion", ["--id", "lb1", "--master", "10.0.0.2", "--restart"], "--restart"),
        ("configure-master", ["--interface", "10.0.0.2", "--accept", "db7"], "db7.pub: missing"),
        ("configure-master", ["--interface", "10.0.0.2", "--accept", "a b"], "not a valid"),
        ("configure-master", ["--interface", "10.0.0.2", "--restart"], "--restart"),
        ("configure-master", ["--interface", "10.0.0.2", "--worker-threads", "0"], "not a number"),
        ("configure-master", ["--interface", "10.0.0.2", "--worker-threads", "x"], "not a number"),
    ],
)
def test_bad_arguments_stop_before_anything_is_written(root, keys, script, args, message):
    proc = run(script, "--root", root, "--keys", keys, *args, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("script", ["install-salt", "configure-master", "configure-minion"])
def test_no_arguments_print_the_usage(script):
    proc = run(script, check=False)
    assert proc.returncode == 2
    assert f"{script} [--root DIR]" in proc.stderr


def commands(stdout):
    """The commands a --dry-run printed, as argument lists."""
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def inside(command, root):
    """What a command runs in the root: ``env -i VAR=VALUE... chroot ROOT COMMAND...``."""
    assert command[:2] == ["env", "-i"], command
    index, env = 2, {}
    while "=" in command[index]:
        name, value = command[index].split("=", 1)
        env[name] = value
        index += 1
    # A clean environment: none of the caller's variables (PIP_*, http_proxy, ...) leak in.
    assert sorted(env) == ["DEBIAN_FRONTEND", "HOME", "LANG", "PATH"], command
    assert command[index : index + 2] == ["chroot", str(root)], command
    return command[index + 2 :]


def test_install_salt_wheelhouse_is_the_labs_template_install(root, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "requirements.txt").write_text("salt==3008.4\n")
    (wheels / "salt-3008.4-py3-none-any.whl").write_text("")
    proc = run("install-salt", "--root", root, "--dry-run", "wheelhouse", wheels)
    ran = [inside(c, root) for c in commands(proc.stdout)]
    staged = "/tmp/webstack-wheels"
    assert ran == [
        ["/usr/bin/python3", "-m", "venv", "/opt/salt"],
        [
            "/opt/salt/bin/pip",
            *("install", "-q", "--no-index", "--no-cache-dir", "--disable-pip-version-check"),
            *("--find-links", staged, "-r", f"{staged}/requirements.txt"),
        ],
        ["/opt/salt/bin/salt-call", "--version"],
    ]
    assert not (root / staged.lstrip("/")).exists(), "the staged wheels are removed"
    binaries = [
        "salt",
        "salt-call",
        "salt-cp",
        "salt-key",
        "salt-master",
        "salt-minion",
        "salt-run",
    ]
    for binary in binaries:
        assert os.readlink(root / "usr/local/bin" / binary) == f"/opt/salt/bin/{binary}"
    units = root / "usr/lib/systemd/system"
    for what, nofile in (("master", 100000), ("minion", 8192)):
        text = (units / f"salt-{what}.service").read_text()
        assert f"ExecStart=/opt/salt/bin/salt-{what}\n" in text
        assert f"LimitNOFILE={nofile}\n" in text
        assert "KillMode=process\n" in text and "Restart=on-failure\n" in text
        assert mode(units / f"salt-{what}.service") == 0o644
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert [p.name for p in wants.iterdir()] == ["salt-minion.service"]
    assert (
        os.readlink(wants / "salt-minion.service") == "/usr/lib/systemd/system/salt-minion.service"
    )
    for sub in ("minion.d", "master.d", "pki/minion", "pki/master/minions"):
        assert (root / "etc/salt" / sub).is_dir()


def test_install_salt_wheelhouse_needs_the_pinned_list(root, tmp_path):
    proc = run("install-salt", "--root", root, "--dry-run", "wheelhouse", tmp_path, check=False)
    assert proc.returncode == 1
    assert "requirements.txt: missing" in proc.stderr


def test_install_salt_packages_uses_salts_repository_pinned_to_one_series(root):
    args = ("packages", "minion", "--version", "3008", "--pip", "pymongo==4.20.1")
    proc = run("install-salt", "--root", root, "--dry-run", *args)
    ran = [inside(c, root) for c in commands(proc.stdout)]
    keyring = "/etc/apt/keyrings/salt-archive-keyring.asc"
    assert ran[0] == ["apt-get", "update", "-q"]
    assert ran[1][:2] == ["apt-get", "install"] and "curl" in ran[1]
    assert ran[2][0] == "curl" and ran[2][-2:] == [keyring, ran[2][-1]]
    assert ran[2][-1].startswith("https://packages.broadcom.com/")
    assert ran[3:] == [
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "salt-minion"],
        ["salt-pip", "install", "-q", "--disable-pip-version-check", "pymongo==4.20.1"],
        ["salt-minion", "--version"],
    ]
    sources = (root / "etc/apt/sources.list.d/salt.sources").read_text()
    assert "URIs: https://packages.broadcom.com/artifactory/saltproject-deb\n" in sources
    assert f"Signed-By: {keyring}\n" in sources
    pin = (root / "etc/apt/preferences.d/salt-pin-1001").read_text()
    assert "Package: salt-*\nPin: version 3008.*\nPin-Priority: 1001\n" in pin


def test_install_salt_packages_can_pin_one_release(root):
    run("install-salt", "--root", root, "--dry-run", "packages", "master", "--version", "3008.4")
    pin = (root / "etc/apt/preferences.d/salt-pin-1001").read_text()
    assert "Pin: version 3008.4*\n" in pin  # apt's glob: 3008.4, not 3008.4.x only


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["packages", "syndic"], 2),
        (["packages", "master", "--version", "latest"], 1),
        (["wheelhouse"], 2),
        (["source"], 2),
    ],
)
def test_install_salt_rejects_bad_arguments(root, args, code):
    proc = run("install-salt", "--root", root, "--dry-run", *args, check=False)
    assert proc.returncode == code, proc.stderr
    assert list(root.iterdir()) == []
