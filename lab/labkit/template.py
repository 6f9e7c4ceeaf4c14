"""The node template: Debian 12 (debootstrap minbase + systemd) with Salt in a venv, built once.

Every container (master and nodes) is an overlay clone of ``<template>/rootfs``, so the template is
never modified once built: a changed input gives a new ``lab-template-<hash>`` directory.
"""

import re
import shutil
import tempfile
from pathlib import Path

from . import proxy
from .config import CACHE, LXCPATH, REPO, SUITE, digest
from .run import say, sh

PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "python3",
    "python3-venv",
    "ca-certificates",
    "procps",
    "netbase",
    "curl",
    "iputils-ping",
)
#: Units that would only compete with Salt for the dpkg lock or do nothing useful in a container.
MASKED = ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer")
#: Salt itself (venv, units, /etc/salt) is installed by the script the Vagrant VMs share.
INSTALL_SALT = REPO / "bootstrap" / "install-salt"


def path(wheels):
    archive, security = proxy.host_mirrors()
    key = digest(
        Path(__file__), INSTALL_SALT, wheels.name, SUITE, archive, security, " ".join(PACKAGES)
    )
    return CACHE / f"lab-template-{key}"


def ensure(lab, wheels):
    """Return the template directory (``rootfs`` inside), building it when missing."""
    target = path(wheels)
    if (target / "rootfs" / "opt" / "salt" / "bin" / "salt-minion").exists():
        say(f"    cached: {target}")
        return target
    work = Path(tempfile.mkdtemp(prefix=".build-lab-template-", dir=CACHE))
    rootfs = work / "rootfs"
    try:
        _debootstrap(lab, rootfs)
        _configure(rootfs)
        _update_lists(lab, rootfs)
        _install_salt(rootfs, wheels)
        work.rename(target)
    finally:
        if work.exists():
            _umount_all(rootfs)
            shutil.rmtree(work, ignore_errors=True)
    say(f"    built: {target}")
    return target


def _debootstrap(lab, rootfs):
    archive, _ = proxy.host_mirrors()
    # Through apt-cacher-ng, so that the next build (another input changed) downloads nothing.
    sh(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            rootfs,
            archive,
        ],
        env={"http_proxy": lab.proxy_url},
        clean=True,
        quiet=True,
    )


def _write(rootfs, relpath, text, mode=0o644):
    target = rootfs / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def _configure(rootfs):
    archive, security = proxy.host_mirrors()
    _write(
        rootfs,
        "etc/apt/sources.list",
        f"deb {archive} {SUITE} main\n"
        f"deb {archive} {SUITE}-updates main\n"
        f"deb {security} {SUITE}-security main\n",
    )
    # The proxy itself (Acquire::http::Proxy) is written per node: it is the lab's gateway address.
    _write(
        rootfs, "etc/apt/apt.conf.d/50lab", 'Acquire::Languages "none";\nAcquire::Retries "3";\n'
    )
    _write(
        rootfs,
        "etc/systemd/journald.conf.d/lab.conf",
        "[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n",
    )
    # Each node gets its own machine-id; an empty one here means no "first boot" actions.
    _write(rootfs, "etc/machine-id", "", 0o444)
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (rootfs / "etc/hostname").unlink(missing_ok=True)
    for unit in MASKED:
        link = rootfs / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")


def _update_lists(lab, rootfs):
    """The package lists of every source above (debootstrap fetched only the suite's main, so a
    node would install without its security updates until Salt refreshed them). A node's first
    install refreshes them again only once they are older than the states' pkg:cache_valid_time
    (Salt reads their age from the lists directory's mtime)."""
    sh(
        ["chroot", rootfs, "apt-get", "-q", "update"],
        env={"http_proxy": lab.proxy_url},
        clean=True,
        quiet=True,
    )


def _install_salt(rootfs, wheels):
    """bootstrap/install-salt's wheelhouse mode: venv /opt/salt from the wheelhouse (offline),
    /usr/local/bin/salt-* links, salt-master/salt-minion units (minion enabled), /etc/salt dirs."""
    sh([INSTALL_SALT, "--root", rootfs, "wheelhouse", wheels], clean=True, quiet=True)
    sh(["chroot", rootfs, "apt-get", "clean"], clean=True)


def _umount_all(rootfs):
    proc = rootfs / "proc"
    if proc.is_dir() and sh(["mountpoint", "-q", proc], check=False).returncode == 0:
        sh(["umount", "-l", proc], check=False)


def prune(keep):
    """Remove templates of other inputs that no container uses any more; return their names."""
    configs = " ".join(p.read_text() for p in LXCPATH.glob("*/config")) if LXCPATH.is_dir() else ""
    removed = []
    for old in CACHE.glob("lab-template-*"):
        if (
            old != keep
            and re.fullmatch(r"lab-template-[0-9a-f]{12}", old.name)
            and str(old) not in configs
        ):
            shutil.rmtree(old)
            removed.append(old.name)
    return removed
