"""The secrets' values (a character set no config file reads specially, 16+ characters, no
placeholder, PEM for the VIP certificate) and which of them a minion must hold: its own share."""

import base64
import json
import os
import secrets as random
import subprocess
import sys
import textwrap

import pytest
import yaml
from labkit import sitedir
from support.salt_modules import load
from support.state_tree import REPO, make_topology

topo = load("_modules", "webstack_topology")
problems = load("_utils", "webstack_topology").problems
table = load("_utils", "webstack_secrets")

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
EXAMPLE = yaml.safe_load((REPO / "pillar" / "webstack_secrets.sls.example").read_text())


def pem(label, size=300):
    body = "\n".join(textwrap.wrap(base64.b64encode(os.urandom(size)).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


CERT = pem("CERTIFICATE") + pem("CERTIFICATE")  # the certificate and its chain
KEY = pem("PRIVATE KEY")


def errors_of(secrets, topology=None, node=None):
    return problems(topology or make_topology(), secrets, None, node=node)


def with_value(key, value):
    return {**SECRETS, key: value}


def topology_using(key):
    """A topology whose nodes use secret ``key`` (mongodb's keys, the Patroni cluster's...)."""
    return make_topology(dbs=3, engine="mongodb" if key.startswith("mongodb") else "ferretdb")


def test_good_secrets_and_a_vip_certificate_pass():
    assert errors_of(SECRETS) == []
    assert errors_of({**SECRETS, "vip_certificate": CERT, "vip_private_key": KEY}) == []
    ec_key = pem("EC PARAMETERS", 12) + pem("EC PRIVATE KEY", 120)
    assert errors_of({**SECRETS, "vip_certificate": CERT, "vip_private_key": ec_key}) == []


#: (key, value, the expected error after ``webstack:secrets:<key>: ``).
BAD_VALUES = {
    # The probe: a '#' in stats_password silently truncated haproxy's `insecure-password`.
    "hash-truncates-haproxy": ("stats_password", "abcdefgh#ijklmnop", "holds a character outside"),
    "newline": ("stats_password", "abcdefgh\nijklmnop", "holds a control character"),
    "space": ("db_password", "abcdefgh ijklmnop", "holds a character outside"),
    "colon-of-pgpass": ("postgres_replication_password", "abcdefgh:ijklmnop", "holds a char"),
    "quote": ("patroni_rest_password", "abcdefgh'ijklmnop", "holds a character outside"),
    "at-of-a-uri": ("mongodb_admin_password", "abcdefgh@ijklmnop", "holds a character outside"),
    "change-me": ("stats_password", "CHANGE-ME", "is a placeholder"),
    "changeme-lower": ("db_password", "changeme", "is a placeholder"),
    "change-me-padded": ("db_password", "CHANGE-ME-CHANGE-ME", "is a placeholder"),
    "password": ("app_secret_key", "Password", "is a placeholder"),
    "password-repeated": ("app_secret_key", "passwordPASSWORD", "is a placeholder"),
    "secret": ("patroni_rest_password", "SECRET", "is a placeholder"),
    "one-character": ("stats_password", "x", "is a placeholder"),
    "one-character-repeated": ("stats_password", "a" * 20, "is a placeholder"),
    "short": ("stats_password", "abc123", "6 characters; 16 to 1024 needed"),
    "fifteen": ("postgres_rewind_password", "abcdefghijklmn1", "15 characters; 16 to 1024"),
    "not-a-string": ("db_password", 12345678901234567890, "is not a string but int"),
    "keyfile-short": ("mongodb_keyfile", "c2Vj", "must be 6-1024 base64 characters"),
    "keyfile-placeholder": ("mongodb_keyfile", "CHANGE-ME", "is a placeholder"),
    "keyfile-not-base64": ("mongodb_keyfile", "abcdef-ghijkl", "must be 6-1024 base64"),
    "certificate-placeholder": ("vip_certificate", "CHANGE-ME", "is not PEM"),
    "certificate-holds-a-key": ("vip_certificate", CERT + KEY, "holds a PRIVATE KEY block"),
    "certificate-with-text": (
        "vip_certificate",
        CERT + "listen x\n",
        "is not PEM",
    ),
    "certificate-text-between-blocks": (
        "vip_certificate",
        pem("CERTIFICATE") + "bind :9 \n" + pem("CERTIFICATE"),
        "holds something other than PEM blocks",
    ),
    "key-encrypted": ("vip_private_key", pem("ENCRYPTED PRIVATE KEY"), "holds a ENCRYPTED"),
    "key-two-keys": ("vip_private_key", KEY + KEY, "must hold exactly one"),
    "key-is-a-certificate": ("vip_private_key", CERT, "holds a CERTIFICATE block"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_each_bad_secret_value_is_named_and_never_shown(case):
    key, value, expected = BAD_VALUES[case]
    secrets = with_value(key, value)
    topology = topology_using(key)
    if key.startswith("vip_"):
        other = "vip_private_key" if key == "vip_certificate" else "vip_certificate"
        secrets[other] = {"vip_certificate": CERT, "vip_private_key": KEY}[other]
    errors = errors_of(secrets, topology)
    assert any(e.startswith(f"webstack:secrets:{key}: {expected}") for e in errors), errors
    if isinstance(value, str) and len(value) > 2:
        assert not any(value in e for e in errors)


def test_the_vip_certificate_and_its_key_come_together():
    pair = ("vip_certificate", "vip_private_key")
    for have, lack in (pair, pair[::-1]):
        value = CERT if have == "vip_certificate" else KEY
        assert errors_of({**SECRETS, have: value}) == [
            f"webstack:secrets:{lack}: missing; {have} needs it (they come together)"
        ]


def test_every_value_the_example_ships_is_refused():
    shipped = EXAMPLE["webstack"]["secrets"]
    topology = make_topology(dbs=3)
    errors = errors_of({**shipped}, topology)
    for key in table.required(["lb", "app", "db"], "ferretdb", True):
        assert any(e.startswith(f"webstack:secrets:{key}: is a placeholder") for e in errors)
    for key, value in shipped.items():
        assert errors_of(with_value(key, value), topology_using(key)) != [], key


def test_the_lab_s_and_the_vagrantfile_s_random_secrets_pass():
    for _ in range(50):
        lab = {key: sitedir._secret(key) for key in sitedir.SECRET_KEYS}
        # The Vagrantfile: SecureRandom.hex(20), SecureRandom.base64(48) for the keyFile.
        vagrant = {key: random.token_hex(20) for key in sitedir.SECRET_KEYS}
        vagrant["mongodb_keyfile"] = base64.b64encode(os.urandom(48)).decode()
        for generated in (lab, vagrant):
            for engine, dbs in (("ferretdb", 3), ("mongodb", 3), ("ferretdb", 1)):
                assert errors_of(generated, make_topology(dbs=dbs, engine=engine)) == []


def test_an_unknown_secret_key_is_refused_with_the_closest_one():
    assert errors_of({**SECRETS, "stats_pasword": "x"}) == [
        "webstack:secrets:stats_pasword: unknown key, did you mean 'stats_password'? "
        f"(expected one of {', '.join(table.ALL_SECRETS)})"
    ]


# --------------------------------------------------------------------------------------------------
# A minion's own share
# --------------------------------------------------------------------------------------------------


def share(name, topology):
    roles = next(n["roles"] for n in topology["nodes"] if n["name"] == name)
    engine = topology["db"]["engine"]
    cluster = engine == "ferretdb" and sum("db" in n["roles"] for n in topology["nodes"]) >= 3
    return table.share(SECRETS, roles, engine, cluster)


@pytest.mark.parametrize(
    ("dbs", "engine"), [(1, "ferretdb"), (3, "ferretdb"), (1, "mongodb"), (3, "mongodb")]
)
def test_each_node_validates_with_only_its_own_share(dbs, engine):
    topology = make_topology(dbs=dbs, engine=engine)
    for node in topology["nodes"]:
        mine = share(node["name"], topology)
        assert errors_of(mine, topology, node=node["name"]) == [], node["name"]
        assert errors_of({}, topology, node=node["name"]) == [
            f"webstack:secrets:{key}: missing or empty (see pillar/webstack_secrets.sls.example)"
            for key in mine
        ]
        # An operator's pillar may still hand every node every secret.
        assert errors_of(SECRETS, topology, node=node["name"]) == []


def test_a_node_needs_exactly_what_its_roles_need():
    topology = make_topology(dbs=3)
    assert errors_of({"stats_password": SECRETS["stats_password"]}, topology, node="lb1") == []
    errors = errors_of({"stats_password": SECRETS["stats_password"]}, topology, node="db2")
    assert [e.split(":")[2] for e in errors] == [
        "db_password",
        "postgres_superuser_password",
        "postgres_replication_password",
        "postgres_rewind_password",
        "patroni_rest_password",
    ]


def test_a_node_s_share_still_refuses_unknown_keys_and_bad_values():
    topology = make_topology()
    errors = errors_of({"stats_password": "CHANGE-ME", "colour": "x"}, topology, node="lb1")
    assert [e.split(":")[2] for e in errors] == ["colour", "stats_password"]


@pytest.mark.parametrize("name", [None, "site-ca"])
def test_the_ca_minion_validates_with_no_secrets_at_all(name):
    topology = make_topology()
    if name:
        topology["master"]["minion_id"] = name
    assert errors_of({}, topology, node=name or "ca") == []
    assert errors_of(SECRETS, topology, node=name or "ca") == []


def test_without_a_node_the_whole_site_s_secrets_are_required():
    topology = make_topology(dbs=3)
    expected = table.required(["lb", "app", "db"], "ferretdb", True)
    errors = errors_of({}, topology)
    assert [e.split(":")[2] for e in errors] == list(expected)


def test_a_secret_no_node_uses_is_not_judged():
    # The example's mongodb keys, left at CHANGE-ME in a ferretdb site's file: no node gets them.
    left = {**SECRETS, "mongodb_keyfile": "CHANGE-ME", "mongodb_admin_password": "CHANGE-ME"}
    assert errors_of(left, make_topology()) == []


# --------------------------------------------------------------------------------------------------
# Wiring: the execution module validates this minion's share; the CLI the whole file
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def minion(monkeypatch):
    """Run ``webstack_topology.validate()`` as Salt would on minion ``id`` with ``pillar``."""

    def run(minion_id, secrets, topology=None, via="opts"):
        pillar = {
            "webstack": {
                "topology": topology or make_topology(),
                "secrets": secrets,
                "lookup": {"ferretdb": {"source": "salt://ferretdb/ferretdb"}},
            }
        }
        monkeypatch.setattr(topo, "__pillar__", pillar, raising=False)
        monkeypatch.setattr(
            topo, "__opts__", {"id": minion_id} if via == "opts" else {}, raising=False
        )
        monkeypatch.setattr(topo, "__grains__", {"id": minion_id}, raising=False)
        return topo.validate()

    return run


@pytest.mark.parametrize("via", ["opts", "grains"])
def test_validate_checks_this_minion_s_share(minion, via):
    lb_share = {"stats_password": SECRETS["stats_password"]}
    assert minion("lb1", lb_share, via=via) == {"valid": True, "errors": []}
    report = minion("app1", lb_share, via=via)
    assert not report["valid"]
    assert [e.split(":")[2] for e in report["errors"]] == ["app_secret_key", "db_password"]
    assert minion("ca", None, via=via) == {"valid": True, "errors": []}


def test_validate_with_an_explicit_topology_checks_the_whole_site():
    topology = make_topology()
    report = topo.validate(topology, {"stats_password": SECRETS["stats_password"]})
    assert [e.split(":")[2] for e in report["errors"]] == ["app_secret_key", "db_password"]
    assert topo.validate(topology, {}, node="ca")["valid"]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, str(REPO / "_modules" / "webstack_topology.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_validates_a_whole_secrets_file(tmp_path):
    good = tmp_path / "webstack_secrets.sls"
    good.write_text(yaml.safe_dump({"webstack": {"secrets": SECRETS}}))
    lab = str(REPO / "topology" / "lab.yaml")
    result = run_cli("validate", lab, "--secrets", str(good))
    assert result.returncode == 0, result.stderr
    assert "valid (5 nodes), secrets valid" in result.stdout
    shipped = run_cli(
        "validate", lab, "--secrets", str(REPO / "pillar/webstack_secrets.sls.example")
    )
    assert shipped.returncode == 1
    assert "  - webstack:secrets:stats_password: is a placeholder" in shipped.stderr
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"stats_password": SECRETS["stats_password"]}))
    result = run_cli("validate", lab, "--secrets", str(partial))
    assert result.returncode == 1
    assert "webstack:secrets:app_secret_key: missing" in result.stderr
    assert run_cli("validate", lab, "--secrets").returncode == 2
