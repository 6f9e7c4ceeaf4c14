"""``webstack_vip`` on lb1 as the loader gives it, for its unit tests and its tests on captures:
a test module binds the fixtures ``salt_mocks`` (``webstack_topology.node`` answering
:func:`lb_node`, and ``cmd.run_all``) and ``configure_loader_modules`` under those names."""

from unittest import mock

import pytest

from support.salt_modules import UTILS, load
from support.webstack_nodes import lb_node

vip = load("_modules", "webstack_vip")


@pytest.fixture
def salt_mocks():
    return {
        "webstack_topology.node": mock.MagicMock(return_value=lb_node()),
        "cmd.run_all": mock.MagicMock(),
    }


@pytest.fixture
def configure_loader_modules(salt_mocks):
    return {
        vip: {
            "__salt__": salt_mocks,
            "__pillar__": {},
            "__grains__": {"id": "lb1"},
            "__utils__": UTILS,
        }
    }
