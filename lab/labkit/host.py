"""Host prerequisites: the Debian packages of scripts/host-packages.txt, installed when missing."""

import os
import shutil
from pathlib import Path

from . import hostreq
from .run import LabError, say, sh

#: The one host package list (scripts/bootstrap-dev installs the same one for `make test`).
PACKAGES = hostreq.read_packages()
#: invoke-rc.d / deb-systemd-invoke ask it before starting a service: 101 means "do not".
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


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
    # The packages' own services are not used: the lab runs apt-cacher-ng itself with its own config
    # dir and makes its own bridge instead of lxc-net's; the tests start their own haproxy,
    # keepalived, PostgreSQL, etcd on loopback. A policy-rc.d answering 101 keeps them all stopped
    # (one the host already has is left as it is).
    ours = not POLICY_RC_D.exists()
    if ours:
        POLICY_RC_D.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        sh(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
            env=env,
            quiet=True,
        )
    finally:
        if ours:
            POLICY_RC_D.unlink(missing_ok=True)
    still = missing_packages()
    if still:
        raise LabError(f"still missing after apt-get install: {' '.join(still)}")
    if not shutil.which("lxc-start"):
        raise LabError("lxc-start is still missing after apt-get install lxc")
