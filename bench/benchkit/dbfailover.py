"""PostgreSQL failover under Patroni (three-db lab): the primary hard-killed under a stream of
note writes through the VIP (https). Failover = a new leader; loss = failed writes, longest gap.

Patroni's REST API is https with client certificates required (``verify_client: required``): it
answers only a client with a site-CA certificate, and the host has none. The bench asks it from
inside a db node, with curl and that node's own certificate (lxc-attach), the way the e2e tests
do. Such a poll costs tens of milliseconds (attach, TLS handshake, answer), so the failover time
is when a poll *saw* the new leader, and each run also records the poll window: how long before
that the change may have happened (from the start of the previous poll, which did not see it).
"""

import json
import threading
import time

from . import labctl
from .stream import Stream

#: Each db node's TLS identity (salt/webstack/parameters/defaults.yaml pki).
PKI = "/etc/webstack/pki/"
CURL_TIMEOUT = 1


def parse_curl(stdout):
    """``(status, JSON body or None)`` from ``curl -s -w '\\n%{http_code}'``; status None when
    nothing answered (curl's 000)."""
    body, _, code = (stdout or "").rpartition("\n")
    code = code.strip()
    status = int(code) if code.isdigit() and code != "000" else None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def rest(node, address, path, port):
    """A GET of Patroni's REST API on ``node``, from ``node`` itself, with its own certificate."""
    out = labctl.attach(
        node,
        "curl", "-s", "-m", str(CURL_TIMEOUT), "-w", "\n%{http_code}",
        "--cacert", PKI + "ca.crt", "--cert", PKI + "node.crt", "--key", PKI + "node.key",
        f"https://{address}:{port}{path}",
        check=False,
    )  # fmt: skip
    return parse_curl(out)


def cluster_state(data):
    """(leader, sync standbys, running member count) from a ``GET /cluster`` answer."""
    members = [m for m in data.get("members", []) if m.get("state") in ("running", "streaming")]
    leader = next((m["name"] for m in members if m.get("role") == "leader"), None)
    syncs = [m["name"] for m in members if m.get("role") == "sync_standby"]
    return leader, syncs, len(members)


def _state(dbs, port, exclude=()):
    """The cluster as the first live db node not in ``exclude`` sees it."""
    for name, address in dbs.items():
        if name in exclude:
            continue
        status, data = rest(name, address, "/cluster", port)
        if status == 200 and isinstance(data, dict):
            return cluster_state(data)
    return None, [], 0


def detection(polls, started):
    """When the polls saw the change: ``polls`` is ``[(poll start, poll end, seen), ...]`` in
    order, the last one the first that saw it. Returns the seconds from ``started`` to the end of
    that poll (``seen_s``), the poll window (from the start of the poll before it, or from
    ``started``: the change happened inside it) and that poll's own duration."""
    if not polls or not polls[-1][2]:
        return None
    first_start, seen_end, _ = polls[-1]
    before = polls[-2][0] if len(polls) > 1 else started
    return {
        "seen_s": round(seen_end - started, 3),
        "window_s": round(seen_end - max(before, started), 3),
        "poll_s": round(seen_end - first_start, 3),
    }


def watch_leader(dbs, port, old, started, *, timeout=120, interval=0.2):
    """Poll until a leader other than ``old`` is seen; ``detection()`` of it."""
    polls = []
    while time.monotonic() - started < timeout:
        begun = time.monotonic()
        leader = _state(dbs, port, exclude=(old,))[0]
        polls.append((begun, time.monotonic(), leader not in (None, old)))
        if polls[-1][2]:
            return leader, detection(polls, started)
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for a new Patroni leader")


def run_once(lab, rate):
    dbs = {n["name"]: n["address"] for n in lab.derived["db_nodes"]}
    port = lab.derived["ports"]["patroni"]
    (leader, syncs, _), _ = labctl.wait_for(
        lambda: (s := _state(dbs, port))[0] and s[1] and s[2] == len(dbs) and s,
        300,
        interval=1,
        what="a healthy Patroni cluster",
    )
    body = json.dumps({"text": "bench db failover"})
    url = labctl.vip_url(lab) + "api/notes"
    context = labctl.tls_context()
    with Stream(url, rate=rate, max_seconds=90, body=body, context=context) as stream:
        time.sleep(3)
        killing = threading.Thread(target=labctl.lxc.stop, args=(leader,), kwargs={"kill": True})
        started = time.monotonic()
        killing.start()
        new, seen = watch_leader(dbs, port, leader, started)
        killing.join(timeout=60)
        time.sleep(10)
    labctl.lab_cmd("start", leader)
    return {
        "killed": leader,
        "promoted": new,
        "was_sync": new in syncs,
        "failover_s": round(seen["seen_s"], 2),
        "poll_window_s": seen["window_s"],
        "poll_s": seen["poll_s"],
        **stream.summary(),
    }
