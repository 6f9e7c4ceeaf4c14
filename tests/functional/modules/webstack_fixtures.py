"""
Fixtures for the functional and integration tests of the webstack module and states: the real
Salt loader (in-process), a real haproxy with two real backends on loopback, and two real
keepalived instances in network namespaces. Every process and namespace is removed in the
finalizers, whatever the outcome. The conftest.py files re-export them.
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
