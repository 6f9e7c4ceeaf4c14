"""
Least privilege in the rendered states (support/state_tree.py, the real loader and state tree):

- root runs only files that root alone can change: every file named in a command root runs (a
  ``cmd.run`` without ``runas``, a ``check_cmd``, an ``onlyif``/``unless``, a root systemd
  ``Exec*=`` line) that a state manages, and every managed directory above it, is root's and
  writable by no group or other user (``/opt/webstack``, the app's code and venv, the helpers in
  ``/usr/local/libexec/webstack``);
- gunicorn runs as the app's user from that root-owned code; the schema helper drops to it too;
- keepalived runs its scripts as its unprivileged script user, which owns only the notify
  script's state directory, and takes VRRP adverts from the other lbs only (``check_unicast_src``
  with exactly the other lbs as unicast peers).
"""

import re
import shlex

import pytest
import yaml
from support.state_tree import REPO

#: topology file -> the nodes rendered (one per role and db flavour).
SITES = {
    "lab.yaml": ("lb1", "lb2", "app1", "db1"),  # db1: a single PostgreSQL
    "lab-ha-db.yaml": ("db1",),  # Patroni + etcd
    "seed.yaml": ("db1",),  # mongodb
}
SCRIPT_USER = "keepalived_script"
APP_USER = "webstack"
HELPERS = "/usr/local/libexec/webstack"


def args_of(body):
    module = next(k for k in body if not k.startswith("__"))
    function = next(item for item in body[module] if isinstance(item, str))
    args = {k: v for item in body[module] if isinstance(item, dict) for k, v in item.items()}
    return module, function, args


def names_of(args):
    if "names" in args:
        return [next(iter(n)) if isinstance(n, dict) else n for n in args["names"]]
    return [args["name"]]


def file_states(states):
    """{path: (function, args)} of every file.managed/directory/recurse."""
    files = {}
    for body in states.values():
        module, function, args = args_of(body)
        if module == "file" and function in ("managed", "directory", "recurse"):
            for path in names_of(args):
                files[path] = (function, args)
    return files


def commands_root_runs(states, rendered):
    """Every command line root runs, with where it comes from."""
    found = []
    for state_id, body in states.items():
        module, function, args = args_of(body)
        if (module, function) == ("cmd", "run") and args.get("runas") in (None, "root"):
            found.append((state_id, args["name"]))
        if args.get("check_cmd"):
            found.append((f"{state_id} check_cmd", args["check_cmd"]))
        for requisite in ("onlyif", "unless"):
            for item in args.get(requisite) or []:
                if isinstance(item, str) and args.get("runas") in (None, "root"):
                    found.append((f"{state_id} {requisite}", item))
    for path, (text, _) in rendered.items():
        if path.startswith("/etc/systemd/") and not re.search(r"^User=", text, re.M):
            for line in re.findall(r"^Exec\w+=-?(.+)$", text, re.M):
                found.append((path, line))
    return found


def absolute_paths(command):
    return {t for t in shlex.split(command.replace(";", " ")) if t.startswith("/")}


def writable_by_others(mode):
    return mode is not None and int(str(mode), 8) & 0o022


def ownership_problems(path, files):
    """Why root running ``path`` (under the states in ``files``) is unsafe; [] when it is not.

    Each managed directory above it must be root's and writable by root only; the closest state
    decides for the path itself: the path's own state, or a directory state that makes everything
    in it root's (``recurse: [user, group]``), or a ``file.recurse`` with safe modes.
    """
    problems = []
    holders = sorted(
        (m for m in files if path == m or path.startswith(m.rstrip("/") + "/")), key=len
    )
    for managed in holders:
        function, args = files[managed]
        owner = f"{args.get('user')}:{args.get('group')}"
        if args.get("user") not in (None, "root"):  # an owner can always chmod
            problems.append(f"{managed} ({function}) is {owner}")
        modes = [args.get("mode")] + (
            [args.get("dir_mode"), args.get("file_mode")] if function == "recurse" else []
        )
        if any(writable_by_others(m) for m in modes):
            problems.append(f"{managed} ({function}) has mode {modes}")
    if holders and holders[-1] != path:
        function, args = files[holders[-1]]
        # The contents keep the modes they were made with: only root may own them at all.
        everything = {"user", "group"} <= set(args.get("recurse") or [])
        if function == "directory" and (args.get("group") not in (None, "root") or not everything):
            problems.append(f"{holders[-1]}: what is in it is not made root's")
    return problems


@pytest.fixture(scope="module")
def sites(state_tree):
    """{file: (topology, tree, {node: show_sls webstack})}."""
    out = {}
    for name, nodes in SITES.items():
        topology = yaml.safe_load((REPO / "topology" / name).read_text())
        tree = state_tree(topology)
        out[name] = (
            topology,
            tree,
            {node: tree.show_sls(node, "webstack")["webstack"] for node in nodes},
        )
    return out


def test_root_runs_only_files_root_alone_can_change(sites):
    checked = {}
    for name, (_, tree, high) in sites.items():
        for node, states in high.items():
            files = file_states(states)
            rendered = tree.rendered_files(node)
            for origin, command in commands_root_runs(states, rendered):
                for path in absolute_paths(command):
                    problems = ownership_problems(path, files)
                    assert not problems, f"{name} {node} {origin}: runs {path}: {problems}"
                    if any(path == m or path.startswith(m + "/") for m in files):
                        checked.setdefault(node, set()).add(path)
    app = checked["app1"]
    assert {f"{HELPERS}/app-schema", "/opt/webstack/venv/bin/python", "/opt/webstack/src"} <= app
    assert f"{HELPERS}/haproxy-save-state" in checked["lb1"]


def test_the_app_runs_as_its_user_from_root_owned_code(sites):
    _, tree, high = sites["lab.yaml"]
    files = file_states(high["app1"])
    for path in ("/opt/webstack", "/opt/webstack/src", "/opt/webstack/venv"):
        _, args = files[path]
        assert (args["user"], args["group"]) == ("root", "root"), path
        assert not writable_by_others(args.get("mode") or args.get("dir_mode")), path
    assert set(files["/opt/webstack/venv"][1]["recurse"]) == {"user", "group"}
    program, _ = tree.rendered_files("app1")["/etc/supervisor/conf.d/webstack-app.conf"]
    assert re.search(rf"^user={APP_USER}$", program, re.M)
    command = re.search(r"^command=(.+)$", program, re.M).group(1)
    assert command.startswith("/opt/webstack/venv/bin/python ")
    assert "--config /opt/webstack/src/gunicorn.conf.py" in command
    # What the app writes lives outside its code: the socket directory is its (and nginx's).
    socket_dir = files["/run/webstack-app"][1]
    assert (socket_dir["user"], socket_dir["group"]) == (APP_USER, "www-data")
    # The schema helper (run by root to restart a stale sidecar) runs the app's code as the app.
    schema = next(
        args["name"]
        for body in high["app1"].values()
        for module, function, args in [args_of(body)]
        if (module, function) == ("cmd", "run") and "app-schema" in args["name"]
    )
    assert shlex.split(schema)[1] == APP_USER
    helper = (REPO / "salt/webstack/app/files/app-schema").read_text()
    assert 'runuser -u "$user" --' in helper


def test_no_cmd_state_runs_as_a_service_user_on_root_owned_code(sites):
    """Commands run as root or as the user that owns what they touch; none as the app's user
    against its (root-owned) code: the install is root's."""
    for _, _, high in sites.values():
        for node, states in high.items():
            for state_id, body in states.items():
                module, function, args = args_of(body)
                if (module, function) == ("cmd", "run") and args.get("runas") == APP_USER:
                    pytest.fail(f"{node} {state_id} runs as {APP_USER}: {args['name']}")


def test_keepalived_scripts_run_unprivileged_and_adverts_come_from_the_other_lbs(sites):
    topology, tree, high = sites["lab.yaml"]
    lbs = {n["name"]: n["address"] for n in topology["nodes"] if "lb" in n["roles"]}
    for node in ("lb1", "lb2"):
        conf, _ = tree.rendered_files(node)["/etc/keepalived/keepalived.conf"]
        assert re.search(r"^\s*enable_script_security$", conf, re.M), node
        assert re.search(rf"^\s*script_user {SCRIPT_USER}$", conf, re.M), node
        assert re.search(r"^\s*check_unicast_src$", conf, re.M), node
        peers = re.search(r"unicast_peer \{([^}]*)\}", conf).group(1).split()
        assert set(peers) == {a for n, a in lbs.items() if n != node}, node
        assert re.search(rf"^\s*unicast_src_ip {re.escape(lbs[node])}$", conf, re.M), node
        files = file_states(high[node])
        owned = {p for p, (_, a) in files.items() if a.get("user") == SCRIPT_USER}
        assert owned == {"/run/webstack"}, node
        tmpfiles = files["/etc/tmpfiles.d/webstack-lb.conf"][1]["contents"]
        assert tmpfiles.split()[:5] == ["d", "/run/webstack", "0755", SCRIPT_USER, SCRIPT_USER]
        notify = re.search(r'notify "(\S+) (\S+)"', conf)
        assert notify.group(2).startswith("/run/webstack/"), node
        script = files[notify.group(1)][1]
        assert (script["user"], script["group"], script["mode"]) == ("root", "root", "0755")
