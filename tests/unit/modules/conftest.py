"""
Real outputs for the parser tests, captured once per session by running the real programs
(haproxy with two loopback backends; keepalived in a network namespace of its own, through the
project's keepalived-notify script). Nothing here is typed by hand.
"""

import pytest
from functional.modules import webstack_harness as harness


def _require_programs():
    problems = harness.environment_problems()
    if problems:
        pytest.fail("cannot capture real outputs: " + "; ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def haproxy_capture(tmp_path_factory):
    """haproxy's answers with app1 UP and drained, app2 DOWN."""
    _require_programs()
    return harness.capture_haproxy(tmp_path_factory.mktemp("haproxy-capture"))


@pytest.fixture(scope="session")
def keepalived_capture(tmp_path_factory):
    """keepalived-notify's record and `ip -j addr` while MASTER, then after a clean stop."""
    _require_programs()
    return harness.capture_keepalived(tmp_path_factory.mktemp("keepalived-capture"))
