"""Every string of the topology and of ``webstack:lookup`` that lands in a config file is held to a
character set: a newline, a ``#`` or a space in one is an error naming its key, never a new line of
haproxy.cfg or keepalived.conf."""

import pytest
import yaml
from support.salt_modules import load
from support.state_tree import REPO, make_topology

problems = load("_utils", "webstack_topology").problems
schema = load("_utils", "webstack_topology_schema")

DEFAULTS = yaml.safe_load((REPO / "salt" / "webstack" / "parameters" / "defaults.yaml").read_text())


def changed(change, **shape):
    topology = make_topology(**shape)
    change(topology)
    return topology


def set_in(*path, value):
    """A change that sets ``topology[path...] = value``."""

    def change(topology):
        where = topology
        for key in path[:-1]:
            where = where[key]
        where[path[-1]] = value

    return change


#: (change, the start of the expected error). Each case is accepted by the previous rules.
TOPOLOGY_STRINGS = {
    # The probe: a name with a newline added a `listen` section with `stats admin` to haproxy.cfg.
    "name-newline": (
        set_in("name", value="lab\nlisten x 0.0.0.0:9\n    stats admin if TRUE"),
        "name: 'lab\\nlisten x",
    ),
    "name-comment": (set_in("name", value="lab # x"), "name: 'lab # x' is not a valid topology"),
    "name-slash-single-db": (set_in("name", value="my lab/1"), "name: 'my lab/1'"),
    "name-not-a-string": (set_in("name", value=["lab"]), "name: ['lab'] is not a valid"),
    "node-name-trailing-newline": (set_in("nodes", 0, "name", value="lb1\n"), "nodes[0].name:"),
    "vip-interface-trailing-newline": (
        set_in("vip", "interface", value="eth0\n"),
        "vip.interface: 'eth0\\n' is not a network interface name",
    ),
    "db-name-trailing-newline": (set_in("db", "name", value="notes\n"), "db.name: 'notes\\n'"),
    "db-user-trailing-newline": (set_in("db", "user", value="u1\n"), "db.user: 'u1\\n'"),
    "db-replica-set-trailing-newline": (
        set_in("db", "replica_set", value="rs0\n"),
        "db.replica_set: 'rs0\\n'",
    ),
    "ca-minion-charset": (
        set_in("master", "minion_id", value="Site CA"),
        "master.minion_id: 'Site CA' is not a valid minion id",
    ),
    "ca-minion-trailing-newline": (
        set_in("master", "minion_id", value="ca\n"),
        "master.minion_id: 'ca\\n'",
    ),
    "ca-minion-is-a-node-name": (
        set_in("master", "minion_id", value="lb1"),
        "nodes[0].name: 'lb1' is also master.minion_id",
    ),
    "node-named-like-the-default-ca-minion": (
        set_in("nodes", 0, "name", value="ca"),
        "nodes[0].name: 'ca' is also master.minion_id",
    ),
}


@pytest.mark.parametrize("case", sorted(TOPOLOGY_STRINGS))
def test_each_topology_string_is_held_to_its_character_set(case):
    change, expected = TOPOLOGY_STRINGS[case]
    errors = problems(changed(change))
    assert any(e.startswith(expected) for e in errors), errors


def test_the_ca_minion_id_is_optional_and_any_valid_minion_id():
    assert problems(changed(set_in("master", "minion_id", value="site-ca"))) == []
    topology = make_topology()
    topology["master"] = {"address": topology["master"]["address"], "minion_id": "ca"}
    assert problems(topology) == []


def lookup_errors(lookup):
    return problems(make_topology(), None, {"ferretdb": {"source": "salt://f/f"}, **lookup})


#: (lookup, the start of the expected error), one per kind of value that lands in a file.
LOOKUP_STRINGS = {
    "path-newline": ({"app": {"home": "/opt/w\nx"}}, "webstack:lookup:app:home: holds a control"),
    "path-relative": ({"app": {"venv": "opt/venv"}}, "webstack:lookup:app:venv: 'opt/venv' is not"),
    "path-dot": ({"app": {"src": "/opt/./src"}}, "webstack:lookup:app:src: '/opt/./src' is not"),
    "path-dot-dot": (
        {"lb": {"haproxy": {"config": "/etc/../x"}}},
        "webstack:lookup:lb:haproxy:config: '/etc/../x' is not an absolute path",
    ),
    "path-space": (
        {"mongodb": {"keyfile": "/etc/mongod key"}},
        "webstack:lookup:mongodb:keyfile: '/etc/mongod key'",
    ),
    "name-space": (
        {"lb": {"haproxy": {"stats_user": "admin x"}}},
        "webstack:lookup:lb:haproxy:stats_user: 'admin x' is not a name",
    ),
    "script-user": (
        {"lb": {"keepalived": {"script_user": "root\n}"}}},
        "webstack:lookup:lb:keepalived:script_user: holds a control character",
    ),
    "name-semicolon": ({"app": {"user": "web;x"}}, "webstack:lookup:app:user: 'web;x'"),
    "service-name": (
        {"patroni": {"service": "patroni\n"}},
        "webstack:lookup:patroni:service: holds a control",
    ),
    "package-name": ({"lb": {"packages": ["haproxy", "a b"]}}, "webstack:lookup:lb:packages:"),
    "db-role-name": (
        {"patroni": {"users": {"rest": "Rest-User"}}},
        "webstack:lookup:patroni:users:rest: 'Rest-User' is not a database identifier",
    ),
    "word-comment": (
        {"lb": {"haproxy": {"timeouts": {"client": "30s #"}}}},
        "webstack:lookup:lb:haproxy:timeouts:client: '30s #' is not a number or one word",
    ),
    "words-semicolon": (
        {"app": {"nginx": {"large_client_header_buffers": "4 8k; x"}}},
        "webstack:lookup:app:nginx:large_client_header_buffers:",
    ),
    "url-space": (
        {"ferretdb": {"source": "salt://f/f #x"}},
        "webstack:lookup:ferretdb:source: 'salt://f/f #x' is not a salt:// or https:// URL",
    ),
    "listen-address": (
        {"ferretdb": {"source": "salt://f/f", "listen": "0.0.0.0 x"}},
        "webstack:lookup:ferretdb:listen:",
    ),
    "error-message-quote": (
        {"lb": {"haproxy": {"json_errors": {503: {"message": 'x" y'}}}}},
        "webstack:lookup:lb:haproxy:json_errors:503:message:",
    ),
    "check-path": (
        {"lb": {"haproxy": {"check": {"path": "/healthz ver"}}}},
        "webstack:lookup:lb:haproxy:check:path:",
    ),
    "sysctl-name": (
        {"sysctl": {"net.ipv4.ip_forward x": 1}},
        "webstack:lookup:sysctl:'net.ipv4.ip_forward x': not a kernel setting's name",
    ),
    "key-newline": ({"app": {"x\ny": 1}}, "webstack:lookup:app:'x\\ny': a key holds a control"),
    "control-anywhere": (
        {"patroni": {"dcs": {"postgresql": {"parameters": {"x": "a\tb"}}}}},
        "webstack:lookup:patroni:dcs:postgresql:parameters:x: holds a control character",
    ),
    "cipher-list-space": (
        {"lb": {"haproxy": {"tls": {"ciphers": "ECDHE-RSA-AES128-GCM-SHA256 no-sslv3"}}}},
        "webstack:lookup:lb:haproxy:tls:ciphers: 'ECDHE-RSA-AES128-GCM-SHA256 no-sslv3' is not",
    ),
    "flag-string": (
        {"lb": {"haproxy": {"tls": {"redirect_http": "false"}}}},
        "webstack:lookup:lb:haproxy:tls:redirect_http: 'false' is not true or false",
    ),
    "pki-path": ({"pki": {"ca": {"key": "/etc/ca key"}}}, "webstack:lookup:pki:ca:key: '/etc/ca"),
    "count-negative": (
        {"pkg": {"cache_valid_time": -1}},
        "webstack:lookup:pkg:cache_valid_time: -1 is not a whole number >= 0",
    ),
    "count-string": (
        {"pkg": {"cache_valid_time": "1d"}},
        "webstack:lookup:pkg:cache_valid_time: '1d' is not a whole number >= 0",
    ),
    "section-not-a-mapping": ({"lb": ["haproxy"]}, "webstack:lookup:lb: ['haproxy'] is not a map"),
    "lookup-not-a-mapping": (["x"], "webstack:lookup: ['x'] is not a mapping"),
}


@pytest.mark.parametrize("case", sorted(LOOKUP_STRINGS))
def test_each_lookup_value_that_lands_in_a_file_is_held_to_its_kind(case):
    lookup, expected = LOOKUP_STRINGS[case]
    if isinstance(lookup, dict):
        errors = lookup_errors(lookup)
    else:
        errors = problems(make_topology(), None, lookup)
    assert any(e.startswith(expected) for e in errors), errors


def leaves(value, path=()):
    """Every ``(path, value)`` of a nested mapping, lists kept whole."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    else:
        yield path, value


def test_the_defaults_pass_the_lookup_rules():
    errors = []
    schema.lookup_problems(DEFAULTS["webstack"], errors)
    assert errors == []


def test_every_default_path_name_and_package_is_covered_by_a_rule():
    """A new parameter in defaults.yaml that is a path, a name or packages needs its rule."""
    names = {"service", "user", "group", "program", "instance", "stats_user", "script_user"}
    for path, value in leaves(DEFAULTS["webstack"]):
        kind = schema._lookup_kind(path)
        where = ".".join(map(str, path))
        if isinstance(value, str) and value.startswith("/"):
            assert kind in ("path", "urlpath"), where
        if path[-1] in names:
            assert kind == "name", where
        if path[-1] == "packages":
            assert kind == "packages", where


def test_every_lookup_rule_names_a_parameter_of_the_defaults():
    """No stale rule: each one (wildcards included) matches a value of defaults.yaml."""
    paths = [path for path, _ in leaves(DEFAULTS["webstack"])]
    for pattern, _kind in schema._LOOKUP_PATTERNS:
        assert any(schema._fits(pattern, path) for path in paths), ".".join(pattern)


def test_the_lab_s_lookup_is_valid():
    lookup = {
        "ferretdb": {"source": "salt://ferretdb/ferretdb", "source_hash": "sha256=" + "0f" * 32},
        "lb": {"keepalived": {"haproxy_tracking": "script"}},
    }
    assert problems(make_topology(), None, lookup) == []
    url = {"ferretdb": {"source": "https://example.org/f?x=1", "source_hash": "sha256=" + "a" * 64}}
    assert problems(make_topology(), None, url) == []
