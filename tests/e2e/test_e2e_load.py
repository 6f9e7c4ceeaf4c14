"""Stopping an app server under load loses no request: haproxy retries and redispatches."""

import time

from e2e_lab import Load


def test_app_server_stop_under_load_fails_no_request(healthy):
    lab = healthy
    victim, survivors = lab.apps[0], set(lab.apps[1:])
    # Bounded in time and in count; the phases below take about 25 s.
    with Load(lab.vip_url + "api/whoami", workers=4, max_seconds=90, max_requests=100000) as load:
        time.sleep(3)
        before = load.total
        try:
            lab.run("service", victim, "supervisor", "stop")
            time.sleep(10)
            during = load.total - before
        finally:
            lab.run("service", victim, "supervisor", "start")
        served_before_restart = load.nodes[victim]
        time.sleep(12)  # the victim comes back (rise x inter, then slowstart)
        after = load.total - before - during
        served_after_restart = load.nodes[victim] - served_before_restart
    print(f"{load.total} requests, statuses {dict(load.statuses)}, served by {dict(load.nodes)}")
    assert not load.failures, f"{len(load.failures)} failed requests, first: {load.failures[:5]}"
    assert before > 0 and during > 0 and after > 0, (before, during, after)
    assert load.total < load.max_requests, "the load stopped at its cap before the test's end"
    assert survivors <= set(load.nodes)
    assert served_after_restart > 0, f"{victim} got no traffic after it started again"
