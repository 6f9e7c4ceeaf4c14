"""
Every generated config passes its own binary's check, exactly as the state runs it (check_cmd).

The checks run in a throw-away mount + network namespace that looks like a node: the topology's
interface and addresses exist (nginx -t binds its listen addresses), the webstack, ferretdb and
keepalived_script users exist (supervisor resolves `user=`, keepalived its `script_user`), and
/usr/local/libexec/webstack holds the helpers.
Nothing on the host changes.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from support.state_tree import REPO, make_topology

HELPERS = {
    p.name: p
    for p in (REPO / "salt" / "webstack").glob("*/files/*")
    if p.is_file() and not p.name.endswith(".jinja")
}
EXPECTED_CHECKS = {
    "/etc/haproxy/haproxy.cfg": "haproxy",
    "/etc/keepalived/keepalived.conf": "keepalived",
    "/etc/nginx/sites-available/webstack": "nginx-check-site",
    "/etc/supervisor/conf.d/webstack-app.conf": "supervisor-check-program",
    "/etc/webstack/app.json": "webstack_app.checkconfig",
}

SANDBOX = r"""
set -eu
ip link set lo up
ip link add "$INTERFACE" type veth peer name "${INTERFACE}-peer"
ip link set "$INTERFACE" up
for address in $ADDRESSES; do ip addr add "$address/32" dev "$INTERFACE"; done
mount -t tmpfs tmpfs /usr/local
mkdir -p /usr/local/libexec/webstack
cp "$WORK"/helpers/* /usr/local/libexec/webstack/
chmod 0755 /usr/local/libexec/webstack/*
mount --bind "$WORK/passwd" /etc/passwd
mount --bind "$WORK/group" /etc/group
# The app's venv and source, where the app role installs them (app.json's check imports the app).
mount -t tmpfs tmpfs /opt
mkdir -p /opt/webstack/venv/bin
printf '#!/bin/sh\nexec %s "$@"\n' "$PYTHON" > /opt/webstack/venv/bin/python
chmod 0755 /opt/webstack/venv/bin/python
ln -s "$APP_SRC" /opt/webstack/src
exec /usr/bin/python3 "$WORK/run_checks.py" "$WORK/checks.json"
"""

RUN_CHECKS = r"""
import json, shlex, subprocess, sys
checks = json.load(open(sys.argv[1]))
out = {}
for path, (file, cmd) in checks.items():
    p = subprocess.run(shlex.split(cmd) + [file], capture_output=True, text=True)
    out[path] = [p.returncode, p.stdout + p.stderr]
print(json.dumps(out))
"""


def run_checks(work, topology, files):
    """Run each (path -> (text, check_cmd)) check in the node-like sandbox; {path: (rc, output)}."""
    work.mkdir(exist_ok=True)
    (work / "helpers").mkdir(exist_ok=True)
    for name, src in HELPERS.items():
        shutil.copy(src, work / "helpers" / name)
    passwd = pathlib.Path("/etc/passwd").read_text()
    group = pathlib.Path("/etc/group").read_text()
    for uid, user in ((64001, "webstack"), (64002, "ferretdb"), (64003, "keepalived_script")):
        passwd += f"{user}:x:{uid}:{uid}::/nonexistent:/usr/sbin/nologin\n"
        group += f"{user}:x:{uid}:\n"
    (work / "passwd").write_text(passwd)
    (work / "group").write_text(group)
    checks = {}
    for index, (path, (text, cmd)) in enumerate(files.items()):
        candidate = work / f"candidate{index}"
        candidate.write_text(text)
        checks[path] = [str(candidate), cmd]
    (work / "checks.json").write_text(json.dumps(checks))
    (work / "run_checks.py").write_text(RUN_CHECKS)
    addresses = " ".join(n["address"] for n in topology["nodes"]) + " " + topology["vip"]["address"]
    proc = subprocess.run(
        ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", SANDBOX],
        env={
            "ADDRESSES": addresses,
            "INTERFACE": topology["vip"]["interface"],
            "WORK": str(work),
            "PYTHON": sys.executable,
            "APP_SRC": str(REPO / "app"),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return {path: tuple(result) for path, result in json.loads(proc.stdout).items()}


@pytest.fixture(scope="module")
def lab_like(state_tree):
    topology = make_topology(lbs=2, apps=2, dbs=1)
    return topology, state_tree(topology)


def checked_files(tree, minion):
    return {p: v for p, v in tree.rendered_files(minion).items() if v[1]}


@pytest.mark.parametrize("minion", ["lb1", "lb2", "app1", "app2"])
def test_every_checked_config_passes_its_binary(lab_like, minion, tmp_path):
    topology, tree = lab_like
    files = checked_files(tree, minion)
    expected = {p for p in EXPECTED_CHECKS if p in files}
    assert expected, f"{minion}: no config with a check_cmd was rendered"
    for path in expected:
        assert EXPECTED_CHECKS[path] in files[path][1], f"{path}: checked by {files[path][1]!r}"
    results = run_checks(tmp_path, topology, files)
    failures = {path: out for path, (rc, out) in results.items() if rc != 0}
    assert not failures, failures


BREAKAGES = {
    "/etc/haproxy/haproxy.cfg": ("balance leastconn", "balance nosuchalgo"),
    "/etc/keepalived/keepalived.conf": ("state BACKUP", "state BACKUP\n    priority 999"),
    "/etc/nginx/sites-available/webstack": ("server_tokens off;", "server_tokens maybe;"),
    "/etc/supervisor/conf.d/webstack-app.conf": ("autorestart=true", "autorestart=maybe"),
    "/etc/webstack/app.json": ('"mongo_uri": "mongodb://', '"mongo_uri": "mysql://'),
}


def test_each_check_rejects_a_broken_config(lab_like, tmp_path):
    """The checks are not rubber stamps: one bad line makes each of them fail."""
    topology, tree = lab_like
    files = {**checked_files(tree, "lb1"), **checked_files(tree, "app1")}
    broken = {}
    for path, (old, new) in BREAKAGES.items():
        text, cmd = files[path]
        assert old in text, f"{path}: {old!r} not in the rendered file"
        broken[path] = (text.replace(old, new, 1), cmd)
    results = run_checks(tmp_path, topology, broken)
    for path, (rc, out) in results.items():
        assert rc != 0, f"{path}: the broken config passed its check:\n{out}"


@pytest.mark.parametrize("tracking", ["process", "script"])
def test_both_haproxy_tracking_modes_pass_keepalived_check(state_tree, tracking, tmp_path):
    """`process` (default, VMs) and `script` (containers, where process events never arrive)."""
    topology = make_topology(lbs=2, apps=1, dbs=1)
    lookup = {"lb": {"keepalived": {"haproxy_tracking": tracking}}}
    path = "/etc/keepalived/keepalived.conf"
    text, cmd = state_tree(topology, lookup=lookup).rendered_files("lb1")[path]
    assert f"vrrp_{'track_process' if tracking == 'process' else 'script'} track_haproxy" in text
    assert re.search(rf"track_{tracking} \{{\s+track_haproxy\s+\}}", text)
    ((rc, out),) = run_checks(tmp_path, topology, {path: (text, cmd)}).values()
    assert rc == 0, out


def test_unknown_haproxy_tracking_is_refused_by_name(state_tree):
    topology = make_topology(lbs=2, apps=1, dbs=1)
    tree = state_tree(topology, lookup={"lb": {"keepalived": {"haproxy_tracking": "psychic"}}})
    with pytest.raises(AssertionError, match="haproxy_tracking: expected 'process' or 'script'"):
        tree.rendered_files("lb1")
