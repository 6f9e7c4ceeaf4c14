"""Host prerequisites: the Debian packages the lab needs, installed with apt-get when missing."""

import os
import shutil

from .run import LabError, say, sh

PACKAGES = (
    "lxc",  # lxc-start/-attach/-stop/-freeze (5.0.2 in Debian 12)
    "debootstrap",  # builds the node template
    "apt-cacher-ng",  # the apt proxy on the bridge address
    "iproute2",  # ip link/addr for the bridge
    "python3-venv",  # builds the wheelhouse with Debian's python3 (the nodes' python3)
    "python3-dev",  # timelib builds a C extension
    "gcc",
    "rsync",
    "util-linux",  # nsenter
    "curl",
)


def missing_packages(packages=PACKAGES):
    out = sh(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages],
        check=False,
        capture=True,
    )
    installed = {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}
    return [p for p in packages if p not in installed]


def ensure_packages():
    if os.geteuid() != 0:
        raise LabError("the lab needs root (containers, bridge, debootstrap): run it as root")
    missing = missing_packages()
    if not missing:
        say("    host packages present")
        return
    say(f"    installing: {' '.join(missing)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    sh(["apt-get", "update", "-q"], env=env, quiet=True)
    sh(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env, quiet=True)
    # The packages' own services are not used (no systemd as PID 1 here): the lab runs apt-cacher-ng
    # itself with its own config dir, and makes its own bridge instead of lxc-net's.
    if not shutil.which("lxc-start"):
        raise LabError("lxc-start is still missing after apt-get install lxc")
