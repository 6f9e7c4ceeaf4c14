"""Every host file and command the lab and the tests use comes from a package the one host list
(scripts/host-packages.txt) names, or from an Essential package: nothing is reached only through a
Recommends (`--no-install-recommends` on a fresh Debian 12 would leave it out, as it did
lxc-templates' debian.common.conf, which every container config includes).

Asks this host's dpkg database (`dpkg -S`, no root): it answers for what is installed here, which
`make test`'s deps step (scripts/bootstrap-dev) has just installed from that same list. The
inventory itself (lab/labkit/hostreq.py) cannot drift from the code: the commands of the lab's
`sh([...])` / `subprocess.run([...])` list literals must all be declared in it.
"""

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from labkit import cluster, config, host, hostreq, lxc
from support.state_tree import REPO

LIST = "scripts/host-packages.txt"
#: Where Debian packages put commands: a command found only in /usr/local is not from the list.
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
#: In every debootstrap (and so on every Debian host), though not Essential.
ALWAYS = {"apt"}
#: Calls whose first argument, a list literal, starts with the command run on the host.
RUNNERS = {"sh", "run", "Popen", "check_output", "check_call", "call"}

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-query") is None, reason="needs dpkg (a Debian host)"
)


def usr_twins(path):
    """``path`` and its twin across the /usr merge (dpkg knows only the one the package ships)."""
    for prefix in ("/bin/", "/sbin/", "/lib/"):
        if path.startswith(prefix):
            return [path, "/usr" + path]
        if path.startswith("/usr" + prefix):
            return [path, path[len("/usr") :]]
    return [path]


def dpkg_owners(path):
    """The packages owning ``path`` per dpkg (also tried: its /usr twin, what it resolves to)."""
    candidates = dict.fromkeys([*usr_twins(path), *usr_twins(os.path.realpath(path))])
    for candidate in candidates:
        proc = subprocess.run(
            ["dpkg-query", "-S", candidate], capture_output=True, text=True, check=False
        )
        owners = set()
        for line in proc.stdout.splitlines():
            if line.startswith("diversion by "):
                continue
            names, sep, _ = line.partition(": ")
            if sep:
                owners |= {n.strip().split(":")[0] for n in names.split(",")}
        if owners:
            return owners
    return set()


@pytest.fixture(scope="module")
def accepted():
    """The list's packages, the Essential ones and apt."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Essential}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    essential = {line.split()[0] for line in out.splitlines() if line.endswith(" yes")}
    return set(hostreq.read_packages()) | essential | ALWAYS


def assert_from_the_list(what, path, accepted):
    owners = dpkg_owners(path)
    assert owners, f"{what} ({path}) is owned by no installed package: add its package to {LIST}"
    assert owners & accepted, (
        f"{what} ({path}) is owned by {', '.join(sorted(owners))}, which {LIST} does not name and "
        f"which is not Essential (reached only as a dependency, or a Recommends that "
        f"--no-install-recommends leaves out): add it to {LIST}"
    )


# --------------------------------------------------------------------------------------------------
# The paths the lab writes into a container config
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    """The container configs of topology/lab.yaml's master and first node."""
    template = tmp_path_factory.mktemp("lab-template-0")
    with pytest.MonkeyPatch.context() as patch:
        # The file's topology, not that of a lab running on this host.
        patch.setattr(config, "STATE_FILE", template / "no-lab.json")
        lab = config.load(REPO / "topology" / "lab.yaml")
    return {
        node.name: lxc.config_text(lab, node, template, cluster._mounts(node))
        for node in (lab.master, lab.nodes[0])
    }, template


def absolute_paths(text):
    """``(key, path)`` for every absolute path in an LXC config's values."""
    found = []
    for raw in text.splitlines():
        key, sep, value = raw.partition("=")
        if raw.lstrip().startswith("#") or not sep:
            continue
        for word in re.split(r"[\s:]+", value):
            if word.startswith("/"):
                found.append((key.strip(), word))
    return found


def lab_owned(path, template):
    """The lab's own paths (repo, caches, state, the template): not from any package."""
    roots = [REPO, config.CACHE, config.STATE, template]
    return any(Path(path) == root or Path(path).is_relative_to(root) for root in roots)


def test_the_container_configs_include_the_declared_lxc_config(configs):
    texts, _ = configs
    for name, text in texts.items():
        assert f"lxc.include = {hostreq.LXC_INCLUDE}\n" in text, name


def test_every_host_path_in_a_container_config_is_declared_and_from_the_list(configs, accepted):
    texts, template = configs
    seen = set()
    for name, text in texts.items():
        for key, path in absolute_paths(text):
            if lab_owned(path, template) or path in seen:
                continue
            seen.add(path)
            assert path in hostreq.HOST_FILES, (
                f"{name}'s config ({key}) names {path}: declare it in labkit/hostreq.HOST_FILES"
            )
            assert_from_the_list(f"{name}'s config {key}", path, accepted)
    assert hostreq.LXC_INCLUDE in seen


def included_files(path, depth=0):
    """``path`` and, recursively, the files its ``lxc.include`` lines name (a directory: its
    ``*.conf``), as lxc reads them at start."""
    target = Path(path)
    if depth > 5 or not target.exists():
        return [path]
    if target.is_dir():
        return [path, *(str(p) for p in sorted(target.glob("*.conf")))]
    found = [path]
    for key, value in absolute_paths(target.read_text(errors="replace")):
        if key == "lxc.include":
            found += included_files(value, depth + 1)
    return found


def test_what_the_lxc_include_includes_is_from_the_list_too(accepted):
    for path in included_files(hostreq.LXC_INCLUDE)[1:]:
        assert_from_the_list(f"included by {hostreq.LXC_INCLUDE}", path, accepted)


# --------------------------------------------------------------------------------------------------
# The declared inventory
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(hostreq.HOST_FILES))
def test_every_declared_host_file_is_from_the_list(path, accepted):
    assert_from_the_list(f"HOST_FILES ({hostreq.HOST_FILES[path]})", path, accepted)


@pytest.mark.parametrize("command", sorted(hostreq.HOST_COMMANDS))
def test_every_declared_host_command_is_from_the_list(command, accepted):
    path = shutil.which(command, path=DEBIAN_PATH)
    assert path, (
        f"{command} ({hostreq.HOST_COMMANDS[command]}) is not in {DEBIAN_PATH} on this host: "
        f"add its package to {LIST} (and run scripts/bootstrap-dev)"
    )
    assert_from_the_list(f"{command} ({hostreq.HOST_COMMANDS[command]})", path, accepted)


# --------------------------------------------------------------------------------------------------
# The inventory follows the code; both installers read the one list
# --------------------------------------------------------------------------------------------------


def commands_run(source):
    """The command names at the head of ``sh([...])`` / ``subprocess.run([...])`` / ``Popen([...])``
    list literals, and of the list literals ``*_args`` functions return (``lxc.attach_args``)."""
    found = set()
    tree = ast.parse(source)
    heads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.List):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in RUNNERS:
                heads.append(node.args[0])
        elif isinstance(node, ast.FunctionDef) and node.name.endswith("_args"):
            heads += [
                n.value
                for n in ast.walk(node)
                if isinstance(n, ast.Return) and isinstance(n.value, ast.List)
            ]
    for literal in heads:
        first = literal.elts[0] if literal.elts else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.add(first.value)
    return found


def test_the_commands_the_lab_runs_are_declared():
    sources = sorted((REPO / "lab" / "labkit").glob("*.py"))
    found = {}
    for source in sources:
        for command in commands_run(source.read_text()):
            found.setdefault(command, source.name)
    assert {"lxc-start", "lxc-attach", "ip", "debootstrap", "nsenter"} <= set(found), found
    undeclared = {c: f for c, f in found.items() if c not in hostreq.HOST_COMMANDS}
    assert not undeclared, (
        f"lab/labkit runs {undeclared} on the host: declare them in labkit/hostreq.HOST_COMMANDS "
        f"(and their package in {LIST})"
    )


def test_the_commands_the_tests_and_bench_run_are_declared():
    sources = [
        *sorted((REPO / "bench" / "benchkit").glob("*.py")),
        *sorted((REPO / "tests" / "support").glob("*.py")),
        *sorted((REPO / "tests" / "functional").rglob("*.py")),
    ]
    found = {}
    for source in sources:
        for command in commands_run(source.read_text()):
            found.setdefault(command, str(source.relative_to(REPO)))
    assert {"haproxy", "wrk"} <= set(found), found
    undeclared = {c: f for c, f in found.items() if c not in hostreq.HOST_COMMANDS}
    assert not undeclared, (
        f"these run {undeclared} on the host: declare them in labkit/hostreq.HOST_COMMANDS "
        f"(and their package in {LIST})"
    )


def test_lab_up_and_bootstrap_dev_install_the_same_one_list():
    listed = subprocess.run(
        [REPO / "scripts" / "bootstrap-dev", "--list-packages"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert listed == list(host.PACKAGES) == list(hostreq.read_packages())
    assert "lxc-templates" in listed
    text = (REPO / "scripts" / "bootstrap-dev").read_text()
    assert "host-packages.txt" in text and "--no-install-recommends" in text


def test_no_package_list_elsewhere():
    """The old second list (bootstrap-dev's APT_PACKAGES literal) does not come back."""
    text = (REPO / "scripts" / "bootstrap-dev").read_text()
    assert not re.search(r"APT_PACKAGES=\(\s*[a-z]", text)
    assert "PACKAGES = (" not in (REPO / "lab" / "labkit" / "host.py").read_text()
