"""
Each minion's pillar holds only the secrets its roles use: Salt's pillar compiler over the real
pillar/ (and a site dir holding every secret), for an lb, an app, a db and the CA minion of each
shipped topology. The expected key sets are written out here: they are the contract, not a copy of
the table in _utils/webstack_secrets.py.
"""

import json

import pytest
import yaml
from support.state_tree import REPO, SECRETS, StateTree

#: The site's secrets file holds every key, the site's own VIP certificate included.
SITE_SECRETS = {
    **SECRETS,
    "vip_certificate": "-----BEGIN CERTIFICATE-----\nvip-cert-1\n-----END CERTIFICATE-----\n",
    "vip_private_key": "-----BEGIN PRIVATE KEY-----\nvip-key-1\n-----END PRIVATE KEY-----\n",
}

LB = {"stats_password", "vip_certificate", "vip_private_key"}
APP = {"app_secret_key", "db_password"}
NONE = set()
#: topology file -> {minion: the secret keys its pillar holds}. "ca" is the site CA's minion (the
#: master host's own, named by the topology's master.minion_id, "ca" by default).
EXPECTED = {
    "lab.yaml": {  # ferretdb, one db node
        "lb1": LB,
        "lb2": LB,
        "app1": APP,
        "db1": {"db_password"},
        "ca": NONE,
    },
    "lab-ha-db.yaml": {  # ferretdb, three db nodes: a Patroni cluster
        "lb1": LB,
        "app1": APP,
        "db1": {
            "db_password",
            "postgres_superuser_password",
            "postgres_replication_password",
            "postgres_rewind_password",
            "patroni_rest_password",
        },
        "db3": {
            "db_password",
            "postgres_superuser_password",
            "postgres_replication_password",
            "postgres_rewind_password",
            "patroni_rest_password",
        },
        "ca": NONE,
    },
    "seed.yaml": {  # mongodb
        "lb1": LB,
        "app1": APP,
        "db1": {"db_password", "mongodb_keyfile", "mongodb_admin_password"},
        "ca": NONE,
    },
}


def load(name):
    return yaml.safe_load((REPO / "topology" / name).read_text())


def secrets_of(pillar):
    return (pillar.get("webstack") or {}).get("secrets") or {}


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def compiled(request, state_tree):
    """(topology file, {minion: compiled pillar}) for the file's minions, plus two strangers."""
    tree = state_tree(load(request.param), secrets=SITE_SECRETS)
    return request.param, tree.pillar(*EXPECTED[request.param], "intruder", "lb1=db1")


def test_each_minion_gets_exactly_its_roles_secrets(compiled):
    name, pillars = compiled
    for minion, keys in EXPECTED[name].items():
        got = secrets_of(pillars[minion])
        assert set(got) == keys, (name, minion)
        assert got == {key: SITE_SECRETS[key] for key in keys}, (name, minion)
        assert "_errors" not in pillars[minion], pillars[minion]["_errors"]


def test_no_other_secret_anywhere_in_a_minions_pillar(compiled):
    """The secrets file is not rendered into the pillar under any other key either."""
    name, pillars = compiled
    for minion, keys in EXPECTED[name].items():
        text = json.dumps(pillars[minion])
        others = {k: v for k, v in SITE_SECRETS.items() if k not in keys}
        leaked = {k for k, v in others.items() if json.dumps(v)[1:-1] in text}
        assert not leaked, (name, minion, leaked)


def test_a_minion_the_topology_does_not_name_gets_none(compiled):
    _, pillars = compiled
    assert secrets_of(pillars["intruder"]) == {}
    assert pillars["intruder"]["webstack"]["topology"]  # the rest of the pillar is there
    assert "x509_signing_policies" in pillars["ca"]  # the CA's own pillar, without secrets


def test_the_authenticated_id_decides_not_the_id_grain(compiled):
    """lb1 claiming to be db1 in its grains still gets lb1's share."""
    _, pillars = compiled
    assert set(secrets_of(pillars["lb1=db1"])) == LB


def test_the_secrets_file_goes_through_salts_renderers(tmp_path):
    """A Jinja secrets file (as any pillar SLS may be) is rendered before the share is taken."""
    tree = StateTree(tmp_path, load("lab.yaml"), secrets=None)
    (tree.site / "webstack_secrets.sls").write_text(
        "{%- set prefix = 'pw-' %}\n"
        "webstack:\n"
        "  secrets:\n"
        "    stats_password: {{ prefix }}stats\n"
        "    db_password: {{ prefix }}db\n"
    )
    pillars = tree.pillar("lb1", "db1", "app1")
    assert secrets_of(pillars["lb1"]) == {"stats_password": "pw-stats"}
    assert secrets_of(pillars["db1"]) == {"db_password": "pw-db"}
    assert secrets_of(pillars["app1"]) == {"db_password": "pw-db"}  # app_secret_key missing


def test_no_secrets_file_no_secrets_and_no_pillar_error(tmp_path):
    """The validation state names each missing key; the pillar itself compiles."""
    tree = StateTree(tmp_path, load("lab.yaml"), secrets=None)
    pillars = tree.pillar("lb1", "db1")
    for minion in ("lb1", "db1"):
        assert secrets_of(pillars[minion]) == {}
        assert "_errors" not in pillars[minion]
