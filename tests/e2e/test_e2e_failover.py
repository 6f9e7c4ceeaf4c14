"""VIP failover: the backup lb takes the VIP when the owner dies or stops keepalived."""

import time

from e2e_lab import http_get, wait_until

#: DESIGN.md §6: hard kill → peer holds the VIP after ≈3.6 s (3 x advert + skew); allow a margin.
HARD_FAILURE_TAKEOVER = 8.0
CLEAN_STOP_TAKEOVER = 3.0


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
    return holders[0], seconds


def test_vip_moves_on_hard_kill(healthy):
    lab = healthy
    owner = lab.vip_owner()
    try:
        lab.run("kill", owner)
        new_owner, seconds = _takeover(lab, owner, HARD_FAILURE_TAKEOVER)
        print(f"hard kill of {owner}: {new_owner} holds the VIP after {seconds:.2f}s")
        assert seconds < HARD_FAILURE_TAKEOVER
    finally:
        lab.run("start", owner)
    # nopreempt: the old owner comes back as BACKUP and the VIP stays where it is.
    time.sleep(3)
    assert lab.vip_holders() == [new_owner]


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
