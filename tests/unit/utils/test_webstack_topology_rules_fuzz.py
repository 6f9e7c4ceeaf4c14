"""Whatever the pillar holds, the rules answer a list of messages and never raise; the derivation
runs only on what they accept, and then never raises either."""

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.salt_modules import load
from support.state_tree import make_topology

derivation = load("_utils", "webstack_topology")
rules = load("_utils", "webstack_topology_rules")
secrets_table = load("_utils", "webstack_secrets")

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

#: Keys a YAML mapping may have: the known ones (so the rules go deep), and anything else.
KNOWN_KEYS = sorted(
    {
        *rules.TOP_LEVEL_KEYS,
        *rules.NODE_KEYS,
        *rules.VIP_KEYS,
        *rules.DB_KEYS,
        *rules.MASTER_KEYS,
        *rules.NETWORK_KEYS,
        *rules.CLIENT_KEYS,
        *rules.DEFAULT_PORTS,
        *secrets_table.ALL_SECRETS,
        "cidr",
        "profile",
        "ferretdb",
        "source",
        "source_hash",
        "lb",
        "haproxy",
        "app",
        "sysctl",
    }
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        ["10.88.0.5", "10.88.0.0/24", "lb", "app", "db", "ferretdb", "mongodb", "gateway"]
    ),
)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8), st.integers(), st.none())
yaml_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=12,
)
nodes_arg = st.one_of(st.none(), st.sampled_from(["lb1", "app1", "db1", "ca", "ghost"]), scalars)


def assert_messages(errors):
    assert isinstance(errors, list)
    assert all(isinstance(error, str) and error for error in errors)


@FUZZ
@given(topology=yaml_like, secrets=yaml_like, lookup=yaml_like, node=nodes_arg)
def test_any_structure_gives_messages_never_an_exception(topology, secrets, lookup, node):
    assert_messages(rules.problems(topology, secrets, lookup, node=node))


@FUZZ
@given(
    topology=st.dictionaries(keys, yaml_like, max_size=9), secrets=st.dictionaries(keys, yaml_like)
)
def test_any_mapping_gives_messages_never_an_exception(topology, secrets):
    assert_messages(rules.problems(topology, secrets, topology))


def paths(value, prefix=()):
    """Every path into a nested structure of mappings and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def value_at(value, path):
    for part in path:
        value = value[part]
    return value


BASE = make_topology(lbs=2, apps=2, dbs=3)
BASE["network"]["gateway"] = "10.88.0.250"
BASE["clients"] = {"direct_app_access": ["gateway"], "unlimited": ["10.88.0.9"]}
BASE["ports"] = {"app": 8080}
BASE_PATHS = [path for path in paths(BASE) if path]


@st.composite
def mutated(draw):
    """The valid base topology with one to three of its values replaced (or keys added)."""
    topology = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(BASE_PATHS))
        where = topology
        try:
            for part in path[:-1]:
                where = where[part]
            if draw(st.booleans()):
                where[path[-1]] = draw(yaml_like)
            elif isinstance(where, dict):
                where[draw(keys)] = draw(yaml_like)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced this path
    return topology


@FUZZ
@given(topology=mutated(), secrets=yaml_like)
def test_near_valid_topologies_derive_only_when_valid(topology, secrets):
    errors = rules.problems(topology, secrets, None, node="lb1")
    assert_messages(errors)
    errors = rules.problems(topology)
    assert_messages(errors)
    if errors:
        with pytest.raises(derivation.TopologyError):
            derivation.derive(topology)
        view = derivation.node("lb1", topology)
        assert view["valid"] is False and view["errors"] == errors
    else:
        cluster = derivation.derive(topology)
        assert derivation.node("lb1", topology)["valid"] is True
        # Nothing a template writes from the derived view can start a new line or a comment.
        for path in paths(cluster):
            value = value_at(cluster, path)
            if isinstance(value, str):
                assert value.isprintable() and not set(value) & set(" #;'\"\\"), (path, value)


def test_the_base_of_the_mutations_is_valid():
    assert rules.problems(BASE) == []
