"""`state.apply test=True` of each role on this (Debian 12) host reports no error: every state
renders, every requisite resolves, every state module and its dependencies are present.

Through a real salt-master and the site CA's own minion (pytest-salt-factories daemons), because
a node's certificate state asks the CA (a peer publish through the master) for its signing policy
even in a dry run: the CA minion applies ``webstack.pki.ca`` for real, its key and certificate
in a temp dir (the site's lookup), and each node's dry run meets it as it would in a site.
"""

import secrets

import pytest
from support.state_tree import REPO, StateTree, make_topology

SITES = {
    "ferretdb": {"engine": "ferretdb"},
    "mongodb": {"engine": "mongodb"},
    "patroni": {"engine": "ferretdb", "dbs": 3},  # three db nodes: Patroni and etcd
}
CASES = [
    ("ferretdb", "lb1", "lb"),
    ("ferretdb", "app1", "app"),
    ("ferretdb", "db1", "db"),
    ("mongodb", "app1", "app"),
    ("mongodb", "db1", "db"),
    ("patroni", "db1", "db"),
]
# States a case's role must hold besides its own (a dry run that skipped them proves nothing).
EXPECTED = {
    ("patroni", "db"): {
        "webstack-db-patroni-config-file-managed",
        "webstack-db-etcd-service-running",
    },
}


def _topology(kind, tag):
    """Minion ids unique to this run (one master per site, all in one factories root)."""
    topology = make_topology(**SITES[kind])
    topology["master"]["minion_id"] = f"ca-{tag}"
    for node in topology["nodes"]:
        node["name"] = f"{node['name']}-{tag}"
    return topology


def _sync(minion):
    """The custom modules (_modules, _states, _utils) from the master, as a site's first apply."""
    synced = minion.salt_call_cli(timeout=120).run("saltutil.sync_all")
    assert synced.returncode == 0, synced.stdout + synced.stderr


@pytest.fixture(scope="module")
def site(request, salt_factories, tmp_path_factory):
    """(tag, master) of a site of kind ``request.param`` (SITES) whose CA is made; node minions
    are started per test."""
    kind, tag = request.param, secrets.token_hex(3)
    base = tmp_path_factory.mktemp(f"test_mode_{kind}")
    ca_dir = base / "ca"
    ca = {"dir": str(ca_dir), "key": str(ca_dir / "ca.key"), "cert": str(ca_dir / "ca.crt")}
    lookup = {"pki": {"ca": ca}}
    tree = StateTree(base / "tree", _topology(kind, tag), lookup=lookup)
    master = salt_factories.salt_master_daemon(
        f"master-{tag}",
        overrides={
            "file_roots": {"base": [str(REPO / "salt"), str(tree.site / "files")]},
            "pillar_roots": {"base": [str(REPO / "pillar"), str(tree.site)]},
            # As bootstrap/configure-master sets it: nodes ask the CA minion to sign.
            "peer": {".*": ["x509.sign_remote_certificate"]},
        },
    )
    with master.started():
        ca_minion = master.salt_minion_daemon(f"ca-{tag}")
        with ca_minion.started():
            _sync(ca_minion)
            made = ca_minion.salt_call_cli(timeout=300).run("state.apply", "webstack.pki.ca")
            assert made.returncode == 0, made.stdout + made.stderr
            assert (ca_dir / "ca.crt").is_file()
            assert (ca_dir / "ca.key").stat().st_mode & 0o077 == 0
            yield kind, tag, master


@pytest.mark.parametrize("site, minion, role", CASES, indirect=["site"])
def test_role_applies_cleanly_in_test_mode(site, minion, role):
    kind, tag, master = site
    node = master.salt_minion_daemon(f"{minion}-{tag}")
    with node.started():
        _sync(node)
        ran = node.salt_call_cli(timeout=600).run("state.apply", f"webstack.{role}", test=True)
    states = ran.data
    assert isinstance(states, dict), ran.stdout + ran.stderr
    errors = {sid: s["comment"] for sid, s in states.items() if s["result"] is False}
    assert not errors, errors
    ids = [s["__id__"] for s in states.values()]
    assert any(sid.startswith(f"webstack-{role}-") for sid in ids), ids
    assert EXPECTED.get((kind, role), set()) <= set(ids), ids
    assert all(s["changes"] == {} or s["result"] is None for s in states.values())
    # The node's certificate was judged against the CA's policy for this node (not refused).
    certificate = next(
        s
        for s in states.values()
        if s["__id__"] == "webstack-pki-certificate-webstack_pki-certificate_managed"
    )
    assert certificate["result"] is None, certificate
