"""The topology's ``clients`` key: who may reach app nodes directly, who is never throttled."""

import pytest
from support.salt_modules import load
from support.state_tree import make_topology

topo = load("_modules", "webstack_topology")
#: The rules, as Salt's loader serves them (``__utils__["webstack_topology.problems"]``).
problems = load("_utils", "webstack_topology").problems


def with_clients(clients, gateway="10.88.0.250"):
    topology = make_topology(lbs=2, apps=2, cidr="10.88.0.0/24")
    if gateway:
        topology.setdefault("network", {})["gateway"] = gateway
    topology["clients"] = clients
    return topology


def test_without_clients_only_the_lbs_reach_the_app_nodes_and_nobody_is_unlimited():
    cluster = topo.derive(make_topology(lbs=2, apps=2, cidr="10.88.0.0/24"))
    lbs = [f"{lb['address']}/32" for lb in cluster["lb"]]
    assert cluster["app_allowed_sources"] == lbs
    assert cluster["client_limits_exempt"] == []


def test_gateway_addresses_and_networks_are_resolved():
    cluster = topo.derive(
        with_clients(
            {"direct_app_access": ["gateway", "10.88.0.200/29"], "unlimited": ["10.88.0.9"]}
        )
    )
    lbs = [f"{lb['address']}/32" for lb in cluster["lb"]]
    assert cluster["app_allowed_sources"] == [*lbs, "10.88.0.250/32", "10.88.0.200/29"]
    assert cluster["client_limits_exempt"] == ["10.88.0.9/32"]


@pytest.mark.parametrize(
    ("clients", "gateway", "expected"),
    [
        ({"direct_acces": []}, "10.88.0.250", "clients.direct_acces: unknown key"),
        ({"unlimited": "10.88.0.9"}, "10.88.0.250", "clients.unlimited: must be a list"),
        ({"unlimited": ["10.88.0.300"]}, "10.88.0.250", "clients.unlimited[0]: '10.88.0.300'"),
        ({"direct_app_access": ["gateway"]}, None, "network.gateway is not set"),
        (["gateway"], "10.88.0.250", "clients: must be a mapping"),
    ],
)
def test_bad_clients_are_named(clients, gateway, expected):
    errors = problems(with_clients(clients, gateway))
    assert any(e.startswith(expected) or expected in e for e in errors), errors
    with pytest.raises(topo.TopologyError):
        topo.derive(with_clients(clients, gateway))
