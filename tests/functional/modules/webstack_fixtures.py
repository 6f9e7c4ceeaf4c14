"""
Fixtures for the functional and integration tests of the webstack modules and states: the real
Salt loader (in-process), a real haproxy with two real backends on loopback, two real keepalived
instances in network namespaces, and the real outputs the parser tests run on (captured once per
session; nothing typed by hand). Every process and namespace is removed in the finalizers,
whatever the outcome. The conftest.py files re-export them.
"""

import pytest
from functional.modules import webstack_harness as harness
from support.state_tree import make_topology


@pytest.fixture(scope="module")
def loaders(tmp_path_factory):
    problems = harness.environment_problems()
    if problems:
        pytest.fail("cannot run the real programs: " + "; ".join(problems), pytrace=False)
    base = tmp_path_factory.mktemp("loaders")
    site = harness.write_site(base / "site", make_topology(lbs=2, apps=2, dbs=1))
    loaders = harness.make_loaders(base, "lb1", site)
    yield loaders
    loaders.reset_state()


@pytest.fixture
def haproxy_lab(tmp_path):
    with harness.HaproxyLab(tmp_path / "haproxy") as lab:
        lab.wait_status("app1", "UP")
        lab.wait_status("app2", "UP")
        yield lab


@pytest.fixture
def vrrp_lab(tmp_path):
    with harness.VrrpLab(tmp_path / "vrrp", count=2) as lab:
        yield lab
    assert not {node["netns"] for node in lab.nodes} & harness.namespaces()


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
