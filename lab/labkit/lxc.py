"""LXC containers in the lab's own lxcpath: config, overlay clone of the template, start/stop.

Facts measured on Debian 12 with LXC 5.0.2: ``lxc.cgroup.relative = 1`` or containers escape into
the root cgroups; always an absolute lxcpath; ``lxc.apparmor.profile = unconfined``.
"""

import hashlib
import shutil
import subprocess
import time

from .config import LXCPATH
from .hostreq import LXC_INCLUDE
from .run import LabError, sh, wait_for

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _p():
    return ["-P", str(LXCPATH)]


def cdir(name):
    return LXCPATH / name


def delta(name):
    """The container's overlay upper dir: files written here before start show up in its rootfs."""
    return cdir(name) / "delta0"


def exists(name):
    return (cdir(name) / "config").exists()


def names():
    """Every container in the lab's lxcpath."""
    if not LXCPATH.is_dir():
        return []
    return sorted(p.name for p in LXCPATH.iterdir() if (p / "config").exists())


def veth_name(name):
    short = f"ws-{name}"
    return short if len(short) <= 15 else "ws-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def hwaddr(address):
    octets = [int(o) for o in address.split(".")]
    return "02:77:" + ":".join(f"{o:02x}" for o in octets)


def config_text(lab, node, template, mounts=()):
    lines = [
        "# Written by the webstack lab (lab/labkit/lxc.py); `lab down` removes it.",
        f"lxc.include = {LXC_INCLUDE}",
        "lxc.arch = linux64",
        f"lxc.uts.name = {node.name}",
        f"lxc.rootfs.path = overlay:{template}/rootfs:{delta(node.name)}",
        "lxc.cgroup.relative = 1",
        "lxc.apparmor.profile = unconfined",
        "lxc.start.auto = 0",
        f"lxc.log.file = {cdir(node.name)}/lxc.log",
        "lxc.log.level = WARN",
        "lxc.net.0.type = veth",
        f"lxc.net.0.link = {lab.bridge}",
        "lxc.net.0.flags = up",
        "lxc.net.0.name = eth0",
        f"lxc.net.0.veth.pair = {veth_name(node.name)}",
        f"lxc.net.0.hwaddr = {hwaddr(node.address)}",
        f"lxc.net.0.ipv4.address = {node.address}/{lab.prefix}",
        # No lxc.net.0.ipv4.gateway: the nodes have no route out of the lab.
    ]
    for source, target in mounts:
        lines.append(f"lxc.mount.entry = {source} {target.lstrip('/')} none bind,ro,create=dir 0 0")
    return "\n".join(lines) + "\n"


def write_config(name, text):
    """Write the config; return True when it changed (or is new)."""
    cdir(name).mkdir(parents=True, exist_ok=True)
    delta(name).mkdir(exist_ok=True)
    path = cdir(name) / "config"
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def put(name, relpath, text, mode=0o644):
    """Write a file into a stopped container's rootfs (through its overlay upper dir)."""
    target = delta(name) / relpath.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def symlink(name, relpath, to):
    link = delta(name) / relpath.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(to)


def state(name):
    """RUNNING, STOPPED, FROZEN, ... or ABSENT."""
    if not exists(name):
        return "ABSENT"
    out = sh(["lxc-info", *_p(), "-n", name, "-s", "-H"], check=False, capture=True)
    return (out or "UNKNOWN").strip() or "UNKNOWN"


def init_pid(name):
    out = sh(["lxc-info", *_p(), "-n", name, "-p", "-H"], check=False, capture=True).strip()
    return int(out) if out.isdigit() else None


def start(name):
    sh(["lxc-start", *_p(), "-n", name, "-d"], quiet=True)


def stop(name, kill=False, timeout=20):
    sh(
        ["lxc-stop", *_p(), "-n", name, *(["-k"] if kill else ["-t", str(timeout)])],
        check=False,
        quiet=True,
    )


def freeze(name):
    sh(["lxc-freeze", *_p(), "-n", name], quiet=True)


def unfreeze(name):
    sh(["lxc-unfreeze", *_p(), "-n", name], quiet=True)


def attach_args(name, *command, env=None):
    """``lxc-attach`` argv for ``command`` in ``name``, with a clean environment: PATH, LANG and
    HOME, and ``env``'s ``{variable: value}`` besides."""
    extra = [arg for key, value in (env or {}).items() for arg in ("-v", f"{key}={value}")]
    return [
        "lxc-attach",
        *_p(),
        "-n",
        name,
        "--clear-env",
        "-v",
        PATH_ENV,
        "-v",
        "LANG=C.UTF-8",
        "-v",
        "HOME=/root",
        *extra,
        "--",
        *command,
    ]


def attach(name, *command, check=True, capture=False, stdin=None, timeout=None):
    return sh(
        attach_args(name, *command), check=check, capture=capture, stdin=stdin, timeout=timeout
    )


def attach_passthrough(name, *command):
    """Run a command inside, with the caller's terminal; return its exit code."""
    return subprocess.run(attach_args(name, *command), check=False).returncode


def netns(name, *command, check=False):
    """Run a host tool in the container's network namespace (works while it is frozen, too)."""
    pid = init_pid(name)
    if pid is None:
        return None
    return sh(["nsenter", "-t", str(pid), "-n", *command], check=check, capture=True)


def wait_booted(name, timeout=90):
    """Wait until systemd inside reports running (or degraded): the boot has settled."""

    def booted():
        if state(name) != "RUNNING":
            return False
        proc = attach(name, "systemctl", "is-system-running", check=False, capture=True, timeout=10)
        return proc.strip() in ("running", "degraded")

    try:
        wait_for(booted, timeout, interval=0.3, what=f"{name} to boot")
    except LabError:
        failed = attach(
            name, "systemctl", "--failed", "--no-legend", check=False, capture=True, timeout=10
        )
        raise LabError(
            f"{name} did not finish booting in {timeout}s; failed units:\n{failed}"
        ) from None


def destroy(name):
    if state(name) in ("RUNNING", "FROZEN", "FREEZING"):
        if state(name) != "RUNNING":
            unfreeze(name)
        stop(name, kill=True)
        for _ in range(50):
            if state(name) == "STOPPED":
                break
            time.sleep(0.1)
    if state(name) not in ("STOPPED", "ABSENT"):
        raise LabError(f"{name} did not stop; not removing it")
    # Not lxc-destroy: the container's own dir (config, overlay upper dir, log) is all it owns; the
    # template (the overlay's lower dir) is a shared cache and must never be touched.
    shutil.rmtree(cdir(name), ignore_errors=True)
