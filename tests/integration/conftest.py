"""
A real salt-master and salt-minion (pytest-salt-factories) over the repository's state tree, for
one lb node whose haproxy (two backends on loopback) and keepalived (in a network namespace of its
own) are real. The master's file_roots is salt/ (its _modules/_states/_runners/_utils symlinks are
how the custom modules reach the minion and the master); its pillar_roots are pillar/ and a site dir
holding topology.yaml, the secrets and lookup overrides that point at the temp dirs.
"""

import secrets

import pytest
from functional.modules import webstack_harness as harness


@pytest.fixture(scope="package")
def minion_id():
    return f"lb-{secrets.token_hex(3)}"


@pytest.fixture(scope="package")
def lb(tmp_path_factory):
    """keepalived and haproxy, both real; started, not waited for (the salt daemons start
    meanwhile): the ``ready_lb`` fixture waits."""
    problems = harness.environment_problems()
    if problems:
        pytest.fail("cannot run the real programs: " + "; ".join(problems), pytrace=False)
    base = tmp_path_factory.mktemp("lb")
    with harness.VrrpLab(base / "vrrp", count=1) as vrrp:
        vrrp.start_all()
        with harness.HaproxyLab(base / "haproxy") as haproxy:
            yield vrrp, haproxy
    assert vrrp.nodes[0]["netns"] not in harness.namespaces()


@pytest.fixture(scope="package")
def site(tmp_path_factory, minion_id, lb):
    vrrp, haproxy = lb
    node = vrrp.nodes[0]
    net = f"10.99.{vrrp.subnet}"
    topology = {
        "name": "integration",
        "network": {"cidr": f"{net}.0/24"},
        "vip": {"address": vrrp.vip, "interface": node["interface"], "router_id": 51},
        "db": {"engine": "ferretdb"},
        "nodes": [
            {"name": minion_id, "address": node["address"], "roles": ["lb"]},
            {"name": "app1", "address": f"{net}.21", "roles": ["app"]},
            {"name": "app2", "address": f"{net}.22", "roles": ["app"]},
            {"name": "db1", "address": f"{net}.31", "roles": ["db"]},
        ],
    }
    lookup = {
        "lb": {
            "haproxy": {
                "admin_socket": str(haproxy.haproxy.socket),
                "server_state_file": str(haproxy.haproxy.state_file),
            },
            "keepalived": {"state_file": str(node["state_file"]), "netns": node["netns"]},
        }
    }
    return harness.write_site(tmp_path_factory.mktemp("site"), topology, lookup)


@pytest.fixture(scope="package")
def salt_master(salt_factories, site):
    overrides = {
        "file_roots": {"base": [str(harness.REPO / "salt")]},
        "pillar_roots": {"base": [str(harness.REPO / "pillar"), str(site)]},
    }
    master = salt_factories.salt_master_daemon(
        f"master-{secrets.token_hex(3)}", overrides=overrides
    )
    with master.started():
        yield master


@pytest.fixture(scope="package")
def salt_minion(salt_master, minion_id):
    minion = salt_master.salt_minion_daemon(minion_id)
    with minion.started():
        synced = salt_master.salt_cli().run("saltutil.sync_all", minion_tgt=minion_id)
        assert synced.returncode == 0, synced.stderr
        assert "modules.webstack" in synced.data["modules"]
        assert "states.webstack" in synced.data["states"]
        assert "utils.webstack_config" in synced.data["utils"]
        # The runner judges through webstack_verdict (_utils): the master syncs both.
        utils = salt_master.salt_run_cli().run("saltutil.sync_utils")
        assert utils.returncode == 0, utils.stderr
        runners = salt_master.salt_run_cli().run("saltutil.sync_runners")
        assert runners.returncode == 0, runners.stderr
        yield minion


@pytest.fixture(scope="package")
def functional(tmp_path_factory, minion_id, site):
    """The same minion id and pillar, through the in-process loader (the functional calls)."""
    loaders = harness.make_loaders(tmp_path_factory.mktemp("functional"), minion_id, site)
    yield loaders.modules
    loaders.reset_state()


@pytest.fixture
def ready_lb(lb, salt_minion):
    """The lb once keepalived is MASTER and haproxy sees both backends up."""
    vrrp, haproxy = lb
    vrrp.wait_master(timeout=10)
    haproxy.wait_status("app1", "UP")
    haproxy.wait_status("app2", "UP")
    return lb
