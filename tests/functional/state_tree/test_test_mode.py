"""`state.apply test=True` of each role on this (Debian 12) host reports no error: every state
renders, every requisite resolves, every state module and its dependencies are present."""

import pytest
from support.state_tree import make_topology

CASES = [
    ("lb1", "lb", "ferretdb"),
    ("app1", "app", "ferretdb"),
    ("db1", "db", "ferretdb"),
    ("app1", "app", "mongodb"),
    ("db1", "db", "mongodb"),
]


@pytest.mark.parametrize("minion, role, engine", CASES)
def test_role_applies_cleanly_in_test_mode(state_tree, minion, role, engine):
    tree = state_tree(make_topology(engine=engine))
    states = tree.apply(minion, f"webstack.{role}")
    assert "__error__" not in states, states
    errors = {sid: s["comment"] for sid, s in states.items() if s["result"] is False}
    assert not errors, errors
    assert any(sid.startswith(f"webstack-{role}-") for sid in states), list(states)
    assert all(s["changes"] == {} or s["result"] is None for s in states.values())
