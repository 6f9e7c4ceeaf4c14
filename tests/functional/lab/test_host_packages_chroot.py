"""A fresh Debian 12 machine, rebuilt every run: the one host package list
(scripts/host-packages.txt) installed with `--no-install-recommends` into a bare debootstrap
provides every file and command the lab and the tests use (lab/labkit/hostreq.py: HOST_FILES,
HOST_COMMANDS).

Needs root (debootstrap, chroot, mounts). Talks only to the Debian mirror of the host's apt sources
(lab/labkit/proxy.host_mirrors). Slow the first time (debootstrap, then ~300 MB of packages), so it
keeps, under $WEBSTACK_CACHE (/var/cache/webstack), keyed by suite and mirror:

- ``host-check-base-<key>``: the bare ``debootstrap --variant=minbase`` tree, never modified (each
  run works on an overlay of it, or a copy where overlayfs is not available);
- ``host-check-debs-<key>``: the downloaded .debs, bind-mounted as the chroot's
  /var/cache/apt/archives (a later run downloads none); ``host-check-lists-<key>``: apt's lists.

Nothing of the host's own dpkg/apt state is touched: apt-get runs only inside the chroot, whose
policy-rc.d answers 101 (no daemon starts). Every mount is undone in a ``finally``, and the
throwaway tree is removed only once nothing is mounted under it any more.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from labkit import hostreq, proxy
from labkit.config import SUITE
from labkit.run import LabError, sh

CACHE = Path(os.environ.get("WEBSTACK_CACHE", "/var/cache/webstack"))
#: Where Debian packages put commands (the unit test resolves them in the same PATH).
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
ENV = {"PATH": DEBIAN_PATH, "LANG": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
#: OS users the tests need (tests/support: PostgreSQL runs as postgres).
HOST_USERS = ("postgres",)
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("debootstrap") or not shutil.which("chroot"),
    reason="needs root and debootstrap (debootstraps and chroots a fresh Debian 12)",
)


class Progress:
    """A line per step with its time, shown live (the test takes minutes the first time)."""

    def __init__(self, capsys):
        self.capsys = capsys
        self.started = time.monotonic()
        self.times = {}

    @contextlib.contextmanager
    def step(self, name):
        begun = time.monotonic()
        self.say(f"{name}…")
        ok = False
        try:
            yield
            ok = True
        finally:
            self.times[name] = time.monotonic() - begun
            self.say(f"{name}: {self.times[name]:.1f}s{'' if ok else ' FAILED'}")

    def say(self, message):
        total = time.monotonic() - self.started
        with self.capsys.disabled():
            print(f"\n[host-check +{total:6.1f}s] {message}", end="", flush=True)


def run(args, timeout=1800):
    """labkit's ``sh`` in :data:`ENV`: the command's stdout; a test failure with its output."""
    try:
        return sh(args, capture=True, clean=True, env=ENV, timeout=timeout)
    except LabError as exc:
        raise AssertionError(str(exc)) from exc


def mounts_under(path):
    """Mount points at or below ``path``, deepest first (from /proc/self/mountinfo)."""
    root = os.path.realpath(path)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == root or point.startswith(root + "/"):
            found.append(point)
    return sorted(set(found), key=len, reverse=True)


def unmount_all(path):
    """Unmount everything under ``path``; True when nothing is left mounted there."""
    for _ in range(3):
        points = mounts_under(path)
        if not points:
            return True
        for point in points:
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return not mounts_under(path)


def remove_tree(path):
    """rm -rf, but never through a mount (a bind of the .deb cache, /proc, a device)."""
    if unmount_all(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        raise AssertionError(f"{path}: still mounted {mounts_under(path)}; not removed")


@contextlib.contextmanager
def locked(key):
    """One run at a time per key (they share the base tree and the apt caches)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".host-check-{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_base(key, archive, progress):
    """The bare minbase tree for SUITE from ``archive``, debootstrapped once."""
    base = CACHE / f"host-check-base-{key}"
    if (base / ".complete").exists():
        with progress.step(f"base tree: cached {base}"):
            pass
        return base / "rootfs"
    with progress.step(f"base tree: debootstrap --variant=minbase {SUITE} {archive}"):
        work = Path(tempfile.mkdtemp(prefix=".build-host-check-base-", dir=CACHE))
        try:
            run(["debootstrap", "--variant=minbase", SUITE, work / "rootfs", archive])
            if not unmount_all(work):
                raise AssertionError(f"{work}: debootstrap left mounts {mounts_under(work)}")
            (work / ".complete").touch()
            remove_tree(base)
            work.rename(base)
        finally:
            if work.exists():
                remove_tree(work)
    return base / "rootfs"


def mount(args, target, mounted):
    run(["mount", *args, target])
    mounted.append(target)


def make_root(base, work, mounted, progress):
    """A writable root over ``base``: an overlay (tmp upper dir), else a copy."""
    root = work / "root"
    for sub in ("root", "upper", "overlay-work"):
        (work / sub).mkdir()
    with progress.step("throwaway root: overlay of the base tree"):
        options = f"lowerdir={base},upperdir={work / 'upper'},workdir={work / 'overlay-work'}"
        try:
            mount(["-t", "overlay", "overlay", "-o", options], root, mounted)
        except AssertionError:
            progress.say("overlayfs not available: copying the base tree instead")
            root.rmdir()
            run(["cp", "-a", "--reflink=auto", base, root])
    return root


def prepare(root, key, archive, security, mounted):
    """apt sources, resolv.conf, policy-rc.d, /proc, /dev, the apt caches: ready for apt-get."""
    (root / "etc/apt/sources.list").write_text(
        f"deb {archive} {SUITE} main\n"
        f"deb {archive} {SUITE}-updates main\n"
        f"deb {security} {SUITE}-security main\n"
    )
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    shutil.copyfile("/etc/resolv.conf", resolv)
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# host-check: no daemon starts in this chroot\nexit 101\n")
    policy.chmod(0o755)
    mount(["-t", "proc", "proc"], root / "proc", mounted)
    for device in DEVICES:  # debootstrap makes them where mknod works; else bind the host's
        node = root / "dev" / device
        if not node.exists():
            node.touch()
            mount(["--bind", f"/dev/{device}"], node, mounted)
    (root / "dev/shm").mkdir(exist_ok=True)
    mount(["-t", "tmpfs", "-o", "mode=1777,size=256m", "tmpfs"], root / "dev/shm", mounted)
    for name, target in (("debs", "var/cache/apt/archives"), ("lists", "var/lib/apt/lists")):
        cache = CACHE / f"host-check-{name}-{key}"
        (cache / "partial").mkdir(parents=True, exist_ok=True)
        (root / target).mkdir(parents=True, exist_ok=True)
        mount(["--bind", cache], root / target, mounted)


def in_root(root, *command, timeout=1800):
    return run(["chroot", root, *command], timeout=timeout)


def absent(root):
    """What of HOST_FILES, HOST_COMMANDS and HOST_USERS the chroot lacks: ``[description]``."""
    missing = []
    for path, why in sorted(hostreq.HOST_FILES.items()):
        if not os.path.lexists(root / path.lstrip("/")):
            missing.append(f"file {path} ({why})")
    script = 'for c in "$@"; do command -v "$c" >/dev/null || echo "$c"; done'
    out = in_root(root, "sh", "-c", script, "sh", *sorted(hostreq.HOST_COMMANDS))
    missing += [f"command {c} ({hostreq.HOST_COMMANDS[c]})" for c in out.split()]
    for user in HOST_USERS:
        if subprocess.run(
            ["chroot", root, "getent", "passwd", user], capture_output=True, env=ENV, check=False
        ).returncode:
            missing.append(f"user {user}")
    return missing


def test_the_host_list_installed_on_a_bare_debootstrap_provides_everything(capsys):
    archive, security = proxy.host_mirrors()
    key = hashlib.sha256(f"{SUITE} {archive} {security}".encode()).hexdigest()[:12]
    packages = hostreq.read_packages()
    progress = Progress(capsys)
    with locked(key):
        base = ensure_base(key, archive, progress)
        work = Path(tempfile.mkdtemp(prefix=".host-check-", dir=CACHE))
        mounted = []
        try:
            root = make_root(base, work, mounted, progress)
            with progress.step("chroot: apt sources, resolv.conf, policy-rc.d, /proc, caches"):
                prepare(root, key, archive, security, mounted)
            with progress.step("chroot: apt-get update"):
                in_root(root, "apt-get", "update", "-q")
            with progress.step(f"chroot: apt-get install --no-install-recommends {len(packages)}"):
                out = in_root(
                    root,
                    "apt-get",
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    "-o",
                    "APT::Keep-Downloaded-Packages=true",
                    "-o",
                    "Dpkg::Use-Pty=0",
                    # A throwaway tree: no fsync after every file (a third of the install's time).
                    "-o",
                    "Dpkg::Options::=--force-unsafe-io",
                    *packages,
                )
                fetched = [line for line in out.splitlines() if line.startswith("Get:")]
                progress.say(f"{len(fetched)} .debs downloaded (the rest from the cache)")
            with progress.step("chroot: every HOST_FILES path, HOST_COMMANDS command, user"):
                missing = absent(root)
        finally:
            with progress.step("cleanup: unmount, remove the throwaway root"):
                for target in reversed(mounted):
                    subprocess.run(["umount", target], capture_output=True, check=False)
                remove_tree(work)
    assert not missing, (
        f"a fresh {SUITE} with scripts/host-packages.txt installed (--no-install-recommends) "
        f"lacks: {'; '.join(missing)}: add their packages to scripts/host-packages.txt"
    )
