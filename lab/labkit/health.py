"""Waiting for the stack to be healthy, and the summary printed at the end of `lab up`."""

import ssl
import subprocess
import urllib.error
import urllib.request

from . import lxc
from .config import CA_FILE, MASTER_NAME, REPO
from .run import TIMINGS, LabError, say, wait_for

#: Where the CA minion keeps the site CA's certificate (salt/webstack/parameters/defaults.yaml).
CA_CERT_ON_MASTER = "/etc/pki/webstack-ca/ca.crt"


def urls(lab):
    ports = lab.derived["ports"]
    front = "" if ports["https"] == 443 else f":{ports['https']}"
    vip = f"https://{lab.vip}{front}/"
    lbs = lab.derived["lb"]
    stats = f"https://{lbs[0]['address']}:{ports['stats']}/stats" if lbs else None
    return vip, stats


def fetch_ca():
    """Copy the site CA's certificate (public) out of the master to ``CA_FILE``; return it."""
    pem = lxc.attach(MASTER_NAME, "cat", CA_CERT_ON_MASTER, capture=True, check=False)
    if "BEGIN CERTIFICATE" not in (pem or ""):
        raise LabError(f"the site CA's certificate {CA_CERT_ON_MASTER} is not on the master yet")
    CA_FILE.parent.mkdir(parents=True, exist_ok=True)
    CA_FILE.write_text(pem)
    return CA_FILE


def tls_context():
    """Verify the lab's https answers against the site CA (copied out by :func:`fetch_ca`)."""
    return ssl.create_default_context(cafile=str(CA_FILE))


def http_status(url, timeout=3):
    """The HTTP status of a GET (only to the lab's own addresses), or None if nothing answers."""
    context = tls_context() if url.startswith("https:") and CA_FILE.exists() else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310 - the lab only
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def wait_healthy(lab, timeout=180):
    """The VIP answers 200, then `salt-run webstack.status` exits 0 (when the runner exists)."""
    fetch_ca()
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
    if CA_FILE.exists():
        say(f"         curl --cacert {CA_FILE.relative_to(REPO)} {vip}  (the site CA)")
    if stats:
        say(f"  stats: {stats} (admin / stats_password in .lab/site/webstack_secrets.sls)")
    say(f"  proxy: {lab.proxy_url}")
    if TIMINGS:
        say("  steps:")
        for name, seconds, ok in TIMINGS:
            say(f"    {name:<28} {seconds:7.1f}s{'' if ok else '  FAILED'}")
        say(f"    {'total':<28} {sum(t for _, t, _ in TIMINGS):7.1f}s")
