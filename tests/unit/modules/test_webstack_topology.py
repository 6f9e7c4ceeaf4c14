"""Unit tests of the pure topology rules in _modules/webstack_topology.py (no Salt needed)."""

import json
import subprocess
import sys

import pytest
import yaml
from support.salt_modules import load
from support.state_tree import REPO, make_topology

topo = load("_modules", "webstack_topology")
#: The rules, as Salt's loader serves them (``__utils__["webstack_topology.problems"]``).
problems = load("_utils", "webstack_topology").problems

#: Secrets that pass the value rules (16+ characters of the safe set, no placeholder).
SECRETS = {
    "stats_password": "stats-Pw-1.long~enough",
    "app_secret_key": "app-key-1-long-enough",
    "db_password": "db/Pw+1=long.enough~",
    "mongodb_keyfile": "c2VjcmV0a2V5ZmlsZWNvbnRlbnRzZm9ydGVzdHM=",
    "mongodb_admin_password": "admin-Pw-1-long-enough",
    "postgres_superuser_password": "su-Pw_1/long+enough=",
    "postgres_replication_password": "repl-Pw_2/long+enough=",
    "postgres_rewind_password": "rewind-Pw_3/long+enough=",
    "patroni_rest_password": "rest-Pw_4/long+enough=",
}


def errors_of(topology, secrets=None, lookup=None):
    return problems(topology, secrets, lookup)


@pytest.mark.parametrize("path", sorted((REPO / "topology").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_topologies_are_valid(path):
    assert errors_of(yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize("lbs", [1, 2, 3, 5, 20])
def test_priorities_follow_topology_order_and_peers_exclude_self(lbs):
    topology = make_topology(lbs=lbs, cidr="10.88.0.0/24")
    cluster = topo.derive(topology)
    priorities = [lb["priority"] for lb in cluster["lb"]]
    assert priorities == sorted(priorities, reverse=True)
    assert len(set(priorities)) == lbs
    assert all(1 <= p <= 254 for p in priorities)
    for lb in cluster["lb"]:
        view = topo.node(lb["name"], topology)
        assert view["priority"] == lb["priority"]
        assert sorted(view["peers"]) == sorted(
            o["address"] for o in cluster["lb"] if o["name"] != lb["name"]
        )


def test_explicit_priority_wins_over_the_derived_one():
    topology = make_topology(lbs=2)
    topology["nodes"][1]["priority"] = 250
    cluster = topo.derive(topology)
    assert [lb["priority"] for lb in cluster["lb"]] == [200, 250]


def test_too_many_lbs_for_derived_priorities_is_an_error():
    topology = make_topology(lbs=21, cidr="10.88.0.0/24")
    assert any("more than derived priorities allow" in e for e in errors_of(topology))


def test_node_outside_the_topology_has_no_roles():
    view = topo.node("ghost", make_topology())
    assert view["valid"] and view["roles"] == [] and view["self"]["address"] is None


def test_invalid_topology_gives_errors_not_an_exception_from_node():
    topology = make_topology()
    topology["db"]["engine"] = "mysql"
    view = topo.node("lb1", topology)
    assert view == {"valid": False, "errors": view["errors"], "name": "lb1", "roles": []}
    assert view["errors"] == [
        "db.engine: unknown engine 'mysql' (expected one of ferretdb, mongodb)"
    ]
    with pytest.raises(topo.TopologyError, match=r"db\.engine"):
        topo.derive(topology)


def test_derived_defaults_for_the_database():
    cluster = topo.derive(make_topology(engine="mongodb"))
    assert cluster["db"] == {
        "engine": "mongodb",
        "replica_set": "rs0",
        "name": "webstack",
        "user": "webstack",
        "cluster": False,
    }
    assert cluster["ports"]["mongodb"] == 27017


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda t: t.update(colour="blue"), "colour: unknown top-level key"),
        (lambda t: t["nodes"][0].update(adress="x"), "nodes[0].adress: unknown key"),
        (
            lambda t: t["nodes"][0].update(name="LB_1"),
            "nodes[0].name: 'LB_1' is not a valid node name",
        ),
        (lambda t: t["vip"].update(interface="a very long name"), "vip.interface:"),
        (lambda t: t["vip"].update(prefix=16), "vip.prefix: /16 differs from the nodes' subnet"),
        (lambda t: t["network"].update(cidr="10.88.0.1/24"), "network.cidr: '10.88.0.1/24'"),
        (lambda t: t["network"].update(gateway="10.1.1.1"), "network.gateway: 10.1.1.1 is outside"),
        (lambda t: t["db"].update(replica_set="rs 0"), "db.replica_set:"),
        (lambda t: t.update(vrrp={"profile": "turbo"}), "vrrp.profile: 'turbo'"),
        (lambda t: t["nodes"][3].update(priority=50), "nodes[3].priority: only lb nodes"),
        (
            lambda t: t["master"].update(address=t["nodes"][0]["address"]),
            "nodes[0].address: duplicate",
        ),
        (lambda t: t["vip"].update(address="10.88.0.255"), "network or broadcast address"),
        (lambda t: t.update(nodes=[]), "nodes: must be a non-empty list"),
    ],
)
def test_each_rule_names_its_key(change, expected):
    topology = make_topology()
    change(topology)
    errors = errors_of(topology)
    assert any(expected in e for e in errors), errors


def test_secrets_and_lookup_rules():
    topology = make_topology()
    assert errors_of(topology, SECRETS, {"ferretdb": {"source": "salt://x"}}) == []
    assert errors_of(topology, {**SECRETS, "db_password": " "}) == [
        "webstack:secrets:db_password: missing or empty (see pillar/webstack_secrets.sls.example)"
    ]
    url = {"ferretdb": {"source": "https://example.invalid/ferretdb"}}
    assert errors_of(topology, SECRETS, url) == [
        "webstack:lookup:ferretdb:source_hash: required when the source is a URL"
    ]
    assert errors_of(topology, {**SECRETS, "app_secret_key": "x1" * 7 + "y"}) == [
        "webstack:secrets:app_secret_key: 15 characters; 16 to 1024 needed "
        "(e.g. `openssl rand -hex 20`)"
    ]
    assert errors_of(topology, {**SECRETS, "app_secret_key": "x1" * 8}) == []
    bad_keyfile = {**SECRETS, "mongodb_keyfile": "short"}
    assert any(
        "mongodb_keyfile" in e for e in errors_of(make_topology(engine="mongodb"), bad_keyfile)
    )


def run_cli(*args, stdin=None):
    return subprocess.run(
        [sys.executable, str(REPO / "_modules" / "webstack_topology.py"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_validates_and_derives(tmp_path):
    good = run_cli("validate", str(REPO / "topology" / "lab.yaml"))
    assert good.returncode == 0 and "valid (5 nodes)" in good.stdout
    derived = json.loads(run_cli("derive", "-", "--json", stdin=json.dumps(make_topology())).stdout)
    assert [n["name"] for n in derived["lb"]] == ["lb1", "lb2"]
    bad = make_topology()
    bad["vip"]["router_id"] = 0
    result = run_cli("validate", "-", stdin=json.dumps(bad))
    assert result.returncode == 1
    assert "vip.router_id: 0 is not a VRRP router id (1-255)" in result.stderr
    assert run_cli("frobnicate").returncode == 2
    assert run_cli("validate", str(tmp_path / "missing.yaml")).returncode == 1
