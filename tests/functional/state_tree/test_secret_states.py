"""
No secret in what Salt shows or keeps of a run, and each file that holds one admits only its
service. Rendered on masterless minions (support/state_tree.py) over the real state tree for an lb,
an app and a db node of each shipped topology (lab: ferretdb on one db node; lab-ha-db: a Patroni
cluster; seed: mongodb):

- ``state.show_sls`` (every state's arguments, template contexts included: what ``state.show_*``
  prints and the master's job cache keeps of a job's arguments) holds no secret, in any of the
  usual encodings (support/secret_leaks.py: as written, JSON- or YAML-escaped, URL-encoded,
  base64);
- a secret is written only into the files its service reads (the expected sets are written out
  here), and each of those files is root's or its service's, readable by that service only, with
  no diff in the state's return (``show_changes: false``).
"""

import json

import pytest
import yaml
from support import secret_leaks
from support.site_pki import SitePki
from support.state_tree import REPO, SECRETS

TOPOLOGIES = ("lab.yaml", "lab-ha-db.yaml", "seed.yaml")

#: Every file a secret is written into, and exactly the secrets it holds.
WRITTEN = {
    "/etc/haproxy/haproxy.cfg": {"stats_password"},
    "/etc/webstack/app.json": {"app_secret_key", "db_password"},
    "/etc/patroni/config.yml": {
        "patroni_rest_password",
        "postgres_superuser_password",
        "postgres_replication_password",
        "postgres_rewind_password",
    },
    "/etc/mongod.keyfile": {"mongodb_keyfile"},  # contents_pillar: not rendered here
    "/etc/haproxy/tls/vip.crt": {"vip_certificate"},  # the site's own VIP certificate: idem
    "/etc/haproxy/tls/vip.key": {"vip_private_key"},
}
#: (user, group, mode) of each of them: the service's group reads it, nobody else does.
PRIVATE = {
    "/etc/haproxy/haproxy.cfg": ("root", "haproxy", "0640"),
    "/etc/webstack/app.json": ("root", "webstack", "0640"),
    "/etc/patroni/config.yml": ("root", "postgres", "0640"),
    "/etc/mongod.keyfile": ("mongodb", "mongodb", "0400"),
    "/etc/haproxy/tls/vip.crt": ("root", "root", "0600"),  # haproxy reads it as root
    "/etc/haproxy/tls/vip.key": ("root", "root", "0600"),
}


def secrets_in(text):
    return set(secret_leaks.find(text, SECRETS))


def owner_of(args):
    """(user, group, mode) of a file state; an owner not set is root (the minion's own user)."""
    return (args.get("user") or "root", args.get("group") or "root", args.get("mode"))


def args_of(body):
    module = next(k for k in body if not k.startswith("__"))
    function = next(item for item in body[module] if isinstance(item, str))
    args = {k: v for item in body[module] if isinstance(item, dict) for k, v in item.items()}
    return module, function, args


def names_of(args):
    """Every path a file state writes (``name``, or each of ``names``)."""
    if "names" in args:
        return [next(iter(n)) if isinstance(n, dict) else n for n in args["names"]]
    return [args["name"]]


@pytest.fixture(scope="module", params=TOPOLOGIES)
def site(request, state_tree):
    """(file name, tree, {node: {sls: show_sls}}) for the first node of each role."""
    topology = yaml.safe_load((REPO / "topology" / request.param).read_text())
    tree = state_tree(topology)
    high = {}
    for role in ("lb", "app", "db"):
        node = next(n for n in topology["nodes"] if role in n["roles"])
        names = ["webstack", "webstack.clean", *(f"webstack.{r}" for r in node["roles"])]
        high[node["name"]] = tree.show_sls(node["name"], *names)
    return request.param, tree, high


def test_no_secret_in_any_rendered_state(site):
    name, _, high = site
    for node, by_sls in high.items():
        for sls, states in by_sls.items():
            assert states, (name, node, sls)
            for state_id, body in states.items():
                found = secrets_in(json.dumps(body))
                assert not found, f"{name} {node} {sls} {state_id}: holds {sorted(found)}"


def test_each_secret_is_written_only_where_its_service_reads_it(site):
    name, tree, high = site
    seen = set()
    for node in high:
        for path, (text, _) in tree.rendered_files(node).items():
            assert secrets_in(text) == WRITTEN.get(path, set()), (name, node, path)
            seen.add(path)
    assert seen & set(WRITTEN), name  # not vacuous


def test_files_holding_secrets_admit_only_their_service_and_show_no_diff(site):
    name, _, high = site
    checked = set()
    for node, by_sls in high.items():
        for state_id, body in by_sls["webstack"].items():
            module, function, args = args_of(body)
            if (module, function) != ("file", "managed"):
                continue
            for path in names_of(args):
                if path not in WRITTEN and "contents_pillar" not in args:
                    continue
                assert path in PRIVATE, f"{name} {node} {state_id}: {path} holds a secret"
                assert owner_of(args) == PRIVATE[path], (name, node, state_id)
                assert args.get("show_changes") is False, (name, node, state_id)
                checked.add(path)
    assert checked, name


def test_the_sites_own_vip_certificate_stays_private_and_out_of_the_states(
    state_tree, tmp_path_factory
):
    topology = yaml.safe_load((REPO / "topology" / "lab.yaml").read_text())
    vip = SitePki(tmp_path_factory.mktemp("vip-pki")).issue(
        "vip", addresses=[topology["vip"]["address"]]
    )
    secrets = {
        **SECRETS,
        "vip_certificate": vip.cert.read_text(),
        "vip_private_key": vip.key.read_text(),
    }
    states = state_tree(topology, secrets=secrets).show_sls("lb1", "webstack")["webstack"]
    assert not secret_leaks.find(json.dumps(states), secrets)
    written = {}
    for body in states.values():
        module, function, args = args_of(body)
        if (module, function) == ("file", "managed") and "contents_pillar" in args:
            written[args["name"]] = (args["contents_pillar"], owner_of(args), args["show_changes"])
    assert written == {
        "/etc/haproxy/tls/vip.crt": (
            "webstack:secrets:vip_certificate",
            PRIVATE["/etc/haproxy/tls/vip.crt"],
            False,
        ),
        "/etc/haproxy/tls/vip.key": (
            "webstack:secrets:vip_private_key",
            PRIVATE["/etc/haproxy/tls/vip.key"],
            False,
        ),
    }
