"""Teardown: containers, their cgroups and veths, the bridge, the apt proxy, the state and site dir.

The caches (template, wheelhouse, apt-cacher-ng's package cache, FerretDB) stay: they are keyed by
their inputs and make the next `lab up` fast. A second `down` finds nothing and does nothing.
"""

import os
import re
import shutil
from pathlib import Path

from . import lxc, net, proxy, sitedir
from .config import STATE, read_state
from .run import say, sh, warn

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _leftover_cgroups(names):
    """lxc.payload.<name>/lxc.monitor.<name> dirs of our containers and the lxc.pivot dirs LXC makes
    when it stops one, in every hierarchy (rmdir removes them only once no process is in them)."""
    wanted = {f"lxc.{kind}.{name}" for name in names for kind in ("payload", "monitor")}
    found = []
    if not CGROUP_ROOT.is_dir():
        return found
    for top, dirs, _ in os.walk(CGROUP_ROOT):
        if top.count("/") > 8:
            dirs[:] = []
            continue
        for d in list(dirs):
            if d == "lxc.pivot" or re.sub(r"-[0-9]+$", "", d) in wanted:
                found.append(Path(top) / d)
                dirs.remove(d)
    return found


def _rmdir_tree(path):
    """rmdir ``path`` and every directory under it, bottom up (a cgroup tree holds no files);
    False, with a warning naming the first failure, when it stays."""
    failed = None
    for top, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            try:
                os.rmdir(Path(top) / d)
            except OSError as exc:  # its parent stays too: reported below
                failed = failed or exc
    try:
        os.rmdir(path)
    except OSError as exc:
        warn(f"{path} stays: {failed or exc}")
        return False
    return True


def down():
    removed = []
    saved = read_state()
    names = lxc.names()
    for name in names:
        lxc.destroy(name)
        removed.append(f"container {name}")
    for cgroup in _leftover_cgroups(set(names) | set(_known_names(saved))):
        if _rmdir_tree(cgroup):
            removed.append(f"cgroup {cgroup}")
    for name in names:
        veth = lxc.veth_name(name)
        if sh(["ip", "link", "show", veth], check=False, quiet=True).returncode == 0:
            sh(["ip", "link", "del", veth], check=False, quiet=True)
            removed.append(f"veth {veth}")
    if proxy.stop():
        removed.append("apt-cacher-ng")
    bridge = saved.get("bridge") or os.environ.get("LAB_BRIDGE", "wsbr0")
    if net.bridge_down(bridge):
        removed.append(f"bridge {bridge}")
    if sitedir.remove():
        removed.append(f"site dir {sitedir.SITE.parent}")
    if STATE.exists():
        shutil.rmtree(STATE)
        removed.append(f"state dir {STATE}")
    say("    removed: " + (", ".join(removed) if removed else "nothing (no lab here)"))
    return removed


def _known_names(saved):
    return saved.get("containers", [])
