"""Fixtures for tests of the state tree (see support/state_tree.py)."""

import shutil

import pytest
from support.state_tree import StateTree


@pytest.fixture(scope="module")
def state_tree(tmp_path_factory):
    """Factory: state_tree(topology, secrets=..., lookup=...) -> StateTree (module-scoped cache)."""
    base = tmp_path_factory.mktemp("state_tree", numbered=True)
    made = {}

    def factory(topology, **kwargs):
        key = repr((topology, sorted(kwargs.items())))
        if key not in made:
            made[key] = StateTree(base / f"site{len(made)}", topology, **kwargs)
        return made[key]

    yield factory
    shutil.rmtree(base, ignore_errors=True)
