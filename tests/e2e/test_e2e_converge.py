"""The lab converges: every node answers with its topology roles; a second apply changes nothing."""


def test_every_minion_answers_with_its_roles(lab):
    pings = lab.salt("*", "test.ping")
    # Every node, and the master host's own minion (the site CA), which has no role.
    assert pings == {name: True for name in lab.lab.minions}
    views = lab.salt("*", "webstack_topology.node")
    for node in lab.lab.nodes:
        assert views[node.name]["valid"] is True, views[node.name]
        assert views[node.name]["roles"] == node.roles
    ca = lab.lab.ca_minion
    assert views[ca]["valid"] is True and views[ca]["roles"] == [], views[ca]


def test_second_apply_is_idempotent(lab):
    """`lab up` applied the states once; applying again succeeds everywhere with zero changes."""
    summary = lab.apply()
    failed = {m: e["errors"] for m, e in summary.items() if e["errors"]}
    assert not failed, f"state.apply failed: {failed}"
    changed = {m: e["changed"] for m, e in summary.items() if e["changed"]}
    assert not changed, (
        f"a second state.apply changed states on: {changed} (see lab's last-apply.json)"
    )
    assert all(e["states"] > 0 for e in summary.values())


def test_stack_is_healthy(healthy):
    lab = healthy
    code, output = lab.status()
    assert code == 0, output
    assert lab.serving_apps(tries=20) == set(lab.apps)
