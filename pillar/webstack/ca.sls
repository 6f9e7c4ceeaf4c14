#!py
"""
The site CA minion's pillar (empty for every other minion: only the topology's
master.minion_id gets it):
one x509 signing policy per node, ``webstack-<node>``, that only that minion may use and that
fixes the certificate's names (CN, subjectAltName) from the topology's derivation, so a node can
be issued a certificate for itself and nothing else; and the mine function that publishes the
CA's certificate to the nodes.

Rendered on the master from the repository (``/srv/webstack``): the derivation and the state
tree's parameters are read from there, not copied.
"""

import importlib.util
import os

import yaml

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _derivation():
    path = os.path.join(_REPO, "_utils", "webstack_topology.py")
    spec = importlib.util.spec_from_file_location("webstack_topology_of_ca_pillar", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _topology():
    return _site_file("topology.yaml")


def _site_file(name):
    """The first ``name`` in the pillar roots, loaded as YAML (None when there is none)."""
    for root in __opts__["pillar_roots"].get(saltenv, []):  # noqa: F821 (the renderer's globals)
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return yaml.safe_load(handle)
    return None


def _parameters():
    """The pki parameters as the states see them: the defaults, then the site's lookup
    (``webstack_local.sls``) over them, so the policies name the CA key the states made."""
    path = os.path.join(_REPO, "salt", "webstack", "parameters", "defaults.yaml")
    with open(path, encoding="utf-8") as handle:
        pki = yaml.safe_load(handle)["webstack"]["pki"]
    lookup = _site_file("webstack_local.sls")
    for key in ("webstack", "lookup", "pki"):
        # A lookup of the wrong shape is the validation state's to report; the defaults stand.
        lookup = lookup.get(key) if isinstance(lookup, dict) else None
    if isinstance(lookup, dict):
        ca = dict(pki["ca"])
        ca.update(lookup["ca"] if isinstance(lookup.get("ca"), dict) else {})
        pki = {**pki, **lookup, "ca": ca}
    return pki


def run():
    topology = _topology()
    derive = _derivation()
    try:
        cluster = derive.derive(topology)
    except derive.TopologyError:
        # The CA's validation state reports the topology's problems; it signs nothing meanwhile.
        return {}
    if __opts__["id"] != cluster["pki"]["ca_minion"]:  # noqa: F821 (the minion being compiled)
        return {}
    pki = _parameters()
    ca = pki["ca"]
    policies = {}
    for name, san in cluster["pki"]["names"].items():
        policies[f"webstack-{name}"] = [
            {"minions": name},
            {"signing_private_key": ca["key"]},
            {"signing_cert": ca["cert"]},
            {"CN": name},
            {"subjectAltName": ", ".join(san)},
            {"basicConstraints": "critical, CA:false"},
            {"keyUsage": "critical, digitalSignature, keyEncipherment"},
            # Every service is a server to some and a client of others (etcd peers, Patroni).
            {"extendedKeyUsage": "serverAuth, clientAuth"},
            {"subjectKeyIdentifier": "hash"},
            {"authorityKeyIdentifier": "keyid:always"},
            {"days_valid": pki["days_valid"]},
        ]
    return {
        "x509_signing_policies": policies,
        "mine_functions": {
            ca["mine_function"]: {"mine_function": "x509.get_pem_entries", "glob_path": ca["cert"]},
        },
    }
