"""A DB outage answers 503 (not 502 or a hang), keeps the app servers in the pool, recovers."""

import pytest
from e2e_lab import http_get, wait_until


def test_db_stop_answers_503_then_recovers(healthy):
    lab = healthy
    if len(lab.dbs) >= 3:
        pytest.skip("a Patroni cluster fails over instead (test_e2e_patroni.py)")
    db = lab.dbs[0]
    try:
        lab.run("service", db, "postgresql", "stop")
        wait_until(lambda: http_get(lab.vip_url)[0] == 503, 30, what="the page to answer 503")
        assert http_get(lab.vip_url + "readyz")[0] == 503
        # /healthz touches no database: haproxy keeps every app server in the pool.
        assert http_get(lab.vip_url + "healthz")[0] == 200
        assert lab.serving_apps(tries=20) == set(lab.apps)
    finally:
        lab.run("service", db, "postgresql", "start")
    wait_until(lambda: http_get(lab.vip_url)[0] == 200, 60, what="the page to answer 200 again")
