"""VIP failover: the backup lb takes the VIP when the owner dies, stops keepalived or loses
haproxy; the page and the data stay served, and the cluster is healthy again once it is back."""

import json
import time

from e2e_lab import http_get, http_post_json, wait_until

#: The bounds. Hard failure: 3 x advert_int + skew (measured in the lab: ≈3.6 s).
HARD_FAILURE_TAKEOVER = 5.0
#: A clean stop sends a priority-0 advert: the peer takes over at once.
CLEAN_STOP_TAKEOVER = 2.0
#: haproxy tracking (1 s poll in the lab) + the FAULT advert.
HAPROXY_CRASH_TAKEOVER = 5.0


def _takeover(lab, old_owner, timeout):
    others = [lb for lb in lab.lbs if lb != old_owner]
    holders, seconds = wait_until(
        lambda: (h := lab.vip_holders()) and set(h) <= set(others) and h,
        timeout * 3,
        interval=0.1,
        what="the VIP on another lb",
    )
    wait_until(
        lambda: http_get(lab.vip_url + "api/whoami", timeout=2)[0] == 200,
        15,
        what="the VIP to serve",
    )
    _module_agrees(lab, holders[0], others)
    return holders[0], seconds


def _module_agrees(lab, owner, lbs):
    """`webstack.vip_owner` on every reachable lb names exactly one owner: ``owner``."""
    views = {lb: lab.salt(lb, "webstack.vip_owner").get(lb) for lb in lbs}
    owners = sorted(m for m, v in views.items() if isinstance(v, dict) and v.get("owner"))
    assert owners == [owner], f"webstack.vip_owner on {lbs}: {views}"


def _note(lab, text):
    status, body = http_post_json(lab.vip_url + "api/notes", {"text": text})
    assert status == 201, body
    return json.loads(body)["id"]


def _still_served(lab, note_id):
    assert http_get(lab.vip_url)[0] == 200
    status, body = http_get(f"{lab.vip_url}api/notes/{note_id}")
    assert status == 200, body


def _healthy_again(lab):
    """Back to one VIP holder, every app serving, and `salt-run webstack.status` exiting 0."""
    lab.wait_healthy(timeout=120)
    code, output = wait_until(
        lambda: (r := lab.status())[0] == 0 and r, 90, interval=3, what="webstack.status to exit 0"
    )[0]
    assert code == 0, output


def test_vip_moves_on_hard_kill(healthy):
    lab = healthy
    owner = lab.vip_owner()
    note_id = _note(lab, f"written before {owner} is killed")
    try:
        lab.run("kill", owner)
        new_owner, seconds = _takeover(lab, owner, HARD_FAILURE_TAKEOVER)
        print(f"hard kill of {owner}: {new_owner} holds the VIP after {seconds:.2f}s")
        assert seconds < HARD_FAILURE_TAKEOVER
        _still_served(lab, note_id)
    finally:
        lab.run("start", owner)
    # nopreempt: the old owner comes back as BACKUP and the VIP stays where it is.
    time.sleep(3)
    assert lab.vip_holders() == [new_owner]
    _healthy_again(lab)


def test_vip_moves_on_keepalived_stop(healthy):
    lab = healthy
    owner = lab.vip_owner()
    try:
        lab.run("service", owner, "keepalived", "stop")
        new_owner, seconds = _takeover(lab, owner, CLEAN_STOP_TAKEOVER)
        print(f"keepalived stop on {owner}: {new_owner} holds the VIP after {seconds:.2f}s")
        assert seconds < CLEAN_STOP_TAKEOVER
    finally:
        lab.run("service", owner, "keepalived", "start")
    time.sleep(3)
    assert lab.vip_holders() == [new_owner]
    _healthy_again(lab)


def test_vip_moves_when_haproxy_dies(healthy):
    """haproxy killed on the holder: keepalived's tracking gives up the VIP; systemd restarts
    haproxy after its RestartSec and the node rejoins as a backup."""
    lab = healthy
    owner = lab.vip_owner()
    note_id = _note(lab, f"written before haproxy dies on {owner}")
    lab.run("exec", owner, "pkill", "--signal", "KILL", "--exact", "haproxy")
    new_owner, seconds = _takeover(lab, owner, HAPROXY_CRASH_TAKEOVER)
    print(f"haproxy killed on {owner}: {new_owner} holds the VIP after {seconds:.2f}s")
    assert seconds < HAPROXY_CRASH_TAKEOVER
    _still_served(lab, note_id)
    wait_until(
        lambda: (
            lab.run("exec", owner, "systemctl", "is-active", "haproxy", check=False).stdout.strip()
            == "active"
        ),
        30,
        what=f"systemd to restart haproxy on {owner}",
    )
    _healthy_again(lab)
    assert lab.vip_holders() == [new_owner]


def test_vip_moves_on_node_stop(healthy):
    lab = healthy
    owner = lab.vip_owner()
    try:
        lab.run("stop", owner)
        new_owner, seconds = _takeover(lab, owner, CLEAN_STOP_TAKEOVER)
        print(f"stop of {owner}: {new_owner} holds the VIP after {seconds:.2f}s")
    finally:
        lab.run("start", owner)
    assert lab.vip_holders() == [new_owner]
    _healthy_again(lab)
