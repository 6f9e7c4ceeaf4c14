"""Unit tests of _utils/webstack_config.py: pillar and lookup access, the topology view."""

from unittest import mock

import pytest
from salt.exceptions import CommandExecutionError
from support.salt_modules import UTILS_MODULES

config = UTILS_MODULES["webstack_config"]


def test_lookup_prefers_pillar():
    pillar = {"webstack": {"lookup": {"lb": {"haproxy": {"admin_socket": "/tmp/x.sock"}}}}}
    assert config.lookup(pillar, "lb:haproxy:admin_socket") == "/tmp/x.sock"
    assert config.lookup(pillar, "lb:haproxy:server_state_file") == "/var/lib/haproxy/server-state"
    empty = {"webstack": {"lookup": {"lb": {"haproxy": {"admin_socket": ""}}}}}
    assert config.lookup(empty, "lb:haproxy:admin_socket") == "/run/haproxy/admin.sock"


def test_pillar_walks_mappings_only():
    data = {"webstack": {"secrets": {"a": "1"}, "list": [1]}}
    assert config.pillar(data, "webstack:secrets:a") == "1"
    assert config.pillar(data, "webstack:list:x", "d") == "d"
    assert config.pillar(data, "webstack:nothing") is None


def test_node_without_the_topology_module_says_so():
    view = config.node({})
    assert view["valid"] is False and view["roles"] == []
    assert "webstack_topology module is not loaded" in view["errors"][0]
    with pytest.raises(CommandExecutionError, match="not loaded"):
        config.node({}, strict=True)


def test_node_reports_the_modules_error_and_lets_a_bug_through():
    failing = mock.MagicMock(side_effect=CommandExecutionError("pillar webstack:topology: bad"))
    view = config.node({"webstack_topology.node": failing})
    assert view["errors"] == ["pillar webstack:topology: bad"] and view["roles"] == []
    buggy = mock.MagicMock(side_effect=KeyError("nodes"))
    with pytest.raises(KeyError):  # a bug, not "no role in the topology"
        config.node({"webstack_topology.node": buggy})
