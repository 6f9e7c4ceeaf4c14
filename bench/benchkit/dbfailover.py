"""PostgreSQL failover under Patroni (three-db lab): the primary hard-killed under a stream of
note writes through the VIP. Failover = a new leader; loss = failed writes, longest gap."""

import http.client
import json
import threading
import time

from . import labctl
from .stream import Stream

PATRONI_PORT = 8008


def _cluster(address):
    try:
        conn = http.client.HTTPConnection(address, PATRONI_PORT, timeout=1)
        try:
            conn.request("GET", "/cluster")
            response = conn.getresponse()
            return json.loads(response.read()) if response.status == 200 else None
        finally:
            conn.close()
    except (OSError, ValueError):
        return None


def _state(dbs, exclude=()):
    """(leader, sync standbys, running member count) seen by the first live db node."""
    for name, address in dbs.items():
        if name in exclude:
            continue
        data = _cluster(address)
        if data:
            members = [m for m in data["members"] if m["state"] in ("running", "streaming")]
            leader = next((m["name"] for m in members if m["role"] == "leader"), None)
            syncs = [m["name"] for m in members if m["role"] == "sync_standby"]
            return leader, syncs, len(members)
    return None, [], 0


def run_once(lab, rate):
    dbs = {n["name"]: n["address"] for n in lab.derived["db_nodes"]}
    (leader, syncs, _), _ = labctl.wait_for(
        lambda: (s := _state(dbs))[0] and s[1] and s[2] == len(dbs) and s,
        300,
        interval=1,
        what="a healthy Patroni cluster",
    )
    body = json.dumps({"text": "bench db failover"})
    with Stream(labctl.vip_url(lab) + "api/notes", rate=rate, max_seconds=90, body=body) as stream:
        time.sleep(3)
        killing = threading.Thread(target=labctl.lxc.stop, args=(leader,), kwargs={"kill": True})
        started = time.monotonic()
        killing.start()
        new, _ = labctl.wait_for(
            lambda: (s := _state(dbs, exclude=(leader,)))[0] not in (None, leader) and s[0],
            120,
            interval=0.2,
            what="a new Patroni leader",
        )
        failover = time.monotonic() - started
        killing.join(timeout=60)
        time.sleep(10)
    labctl.lab_cmd("start", leader)
    return {
        "killed": leader,
        "promoted": new,
        "was_sync": new in syncs,
        "failover_s": round(failover, 2),
        **stream.summary(),
    }
