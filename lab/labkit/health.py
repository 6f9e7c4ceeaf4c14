"""Waiting for the stack to be healthy, and the summary printed at the end of `lab up`."""

import subprocess
import urllib.error
import urllib.request

from . import lxc
from .config import MASTER_NAME, REPO
from .run import TIMINGS, LabError, say, wait_for


def urls(lab):
    ports = lab.derived["ports"]
    front = "" if ports["frontend"] == 80 else f":{ports['frontend']}"
    vip = f"http://{lab.vip}{front}/"
    lbs = lab.derived["lb"]
    stats = f"http://{lbs[0]['address']}:{ports['stats']}/stats" if lbs else None
    return vip, stats


def http_status(url, timeout=3):
    """The HTTP status of a GET (only to the lab's own addresses), or None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http to the lab only
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def wait_healthy(lab, timeout=180):
    """The VIP answers 200, then `salt-run webstack.status` exits 0 (when the runner exists)."""
    vip, _ = urls(lab)
    last = {}

    def vip_ok():
        last["vip"] = http_status(vip)
        return last["vip"] == 200

    try:
        wait_for(vip_ok, timeout, interval=1, what=f"{vip} to answer 200")
    except LabError as exc:
        raise LabError(
            f"{exc} (last answer: {last.get('vip') or 'none'}); see `lab status`"
        ) from None
    say(f"    {vip} answers 200")
    if not (REPO / "_runners" / "webstack.py").exists():
        return

    def cluster_ok():
        proc = subprocess.run(
            lxc.attach_args(MASTER_NAME, "salt-run", "webstack.status"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        last["status"] = proc.stdout + proc.stderr
        return proc.returncode == 0

    try:
        wait_for(cluster_ok, timeout, interval=3, what="salt-run webstack.status to exit 0")
    except LabError as exc:
        tail = "\n".join(last.get("status", "").splitlines()[-30:])
        raise LabError(f"{exc}; its last output:\n{tail}") from None
    say("    salt-run webstack.status: healthy")


def vip_holders(lab):
    """The lbs that have the VIP on their VRRP interface now (ground truth, seen from the host)."""
    iface, vip = lab.derived["vip"]["interface"], lab.vip
    holders = []
    for node in lab.derived["lb"]:
        out = lxc.netns(node["name"], "ip", "-4", "-o", "addr", "show", "dev", iface)
        if out and f" {vip}/" in out:
            holders.append(node["name"])
    return holders


def node_table(lab):
    rows = [("NODE", "ROLES", "ADDRESS", "STATE")]
    for c in lab.containers:
        rows.append((c.name, ",".join(c.roles), c.address, lxc.state(c.name)))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    return ["  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def summary(lab):
    vip, stats = urls(lab)
    say("")
    name, network = lab.derived["name"], f"{lab.bridge} {lab.gateway}/{lab.prefix}"
    say(f"webstack lab '{name}' ({lab.topology_file.name}) on bridge {network}")
    for line in node_table(lab):
        say("  " + line)
    say(f"  VIP:   {vip}")
    if stats:
        say(f"  stats: {stats} (admin / stats_password in .lab/site/webstack_secrets.sls)")
    say(f"  proxy: {lab.proxy_url}")
    if TIMINGS:
        say("  steps:")
        for name, seconds, ok in TIMINGS:
            say(f"    {name:<28} {seconds:7.1f}s{'' if ok else '  FAILED'}")
        say(f"    {'total':<28} {sum(t for _, t, _ in TIMINGS):7.1f}s")
