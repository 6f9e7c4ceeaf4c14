"""Fixtures shared by the unit tests of the execution modules and of the states."""

import pytest
from support.fake_mongod import FakeMongod


@pytest.fixture
def mongod():
    """The fake mongod of tests/support/fake_mongod.py, empty: no replica set, no user."""
    return FakeMongod()
