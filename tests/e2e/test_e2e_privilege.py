"""
Least privilege on the running lab, as the nodes have it (tests/functional/state_tree/
test_privilege_states.py checks the same in the rendered states):

- on every node, what root runs from Salt (/usr/local/libexec/webstack) and, on the app nodes,
  the app's code and venv (/opt/webstack) are root's and writable by root only, and so is each
  directory above them;
- gunicorn runs as the app's user, never as root;
- keepalived's notify script ran as its script user: the VRRP state file is that user's, in a
  directory only that user may write.
"""

import subprocess

from e2e_lab import lxc

SCRIPT_USER = "keepalived_script"
APP_USER = "webstack"
#: Anything but root's, or writable by group or others (symbolic links are always 0777: skipped).
UNSAFE = r"\( ! -user root -o -perm /022 \) ! -type l"


def run(name, script):
    proc = subprocess.run(
        lxc.attach_args(name, "sh", "-c", script),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{name}: {script}: {proc.stderr[-2000:]}"
    return proc.stdout.strip()


def unsafe_paths(name, *roots):
    """Every file under ``roots`` (and each of their parent directories) root may not trust.
    A root this node does not have (a single db node has no helper scripts) holds nothing."""
    script = " ; ".join(
        f'if [ -e {root} ]; then d={root}; while [ "$d" != / ]; do d=$(dirname "$d"); '
        f'find "$d" -maxdepth 0 {UNSAFE} -printf "%p %u %m\\n"; done; '
        f'find {root} {UNSAFE} -printf "%p %u %m\\n"; fi'
        for root in roots
    )
    return run(name, script).splitlines()


def test_root_runs_only_root_owned_code(healthy):
    lab = healthy
    for node in lab.lab.nodes:
        roots = ["/usr/local/libexec/webstack"]
        if "app" in node.roles:
            roots.append("/opt/webstack")
        assert unsafe_paths(node.name, *roots) == [], node.name


def test_gunicorn_runs_as_the_apps_user(healthy):
    lab = healthy
    for name in lab.apps:
        users = run(name, "ps -eo user:32=,args= | awk '/[g]unicorn/ {print $1}' | sort -u")
        assert users.split() == [APP_USER], (name, users)


def test_keepalived_notify_runs_as_its_script_user(healthy):
    lab = healthy
    for name in lab.lbs:
        owners = run(name, "stat -c '%n %U %a' /run/webstack /run/webstack/vrrp.json")
        assert owners.splitlines() == [
            f"/run/webstack {SCRIPT_USER} 755",
            f"/run/webstack/vrrp.json {SCRIPT_USER} 644",
        ], (name, owners)
        conf = run(name, "cat /etc/keepalived/keepalived.conf")
        assert f"script_user {SCRIPT_USER}" in conf and "check_unicast_src" in conf, name
