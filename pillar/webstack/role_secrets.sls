#!py
"""
This minion's share of the site's secrets: only the keys its own roles use, never the whole file.

The site's secrets file (``webstack_secrets.sls`` in a pillar root: the site dir) is not in the
pillar top. This SLS finds it as Salt would (the pillar roots, in order), renders it with Salt's
renderers (so it may be Jinja, GPG...) and keeps ``webstack_secrets.share(...)`` of it: the one
table of which role holds which secret, ``_utils/webstack_secrets.py`` of this checkout. The roles
are those of the topology entry named by the minion's id (the id the master authenticated, not a
grain); a minion the topology does not name (the CA minion) gets no secrets, and so does every
minion when the topology cannot be read.

(The file name is not ``secrets.sls``: Salt's py renderer registers the module under its file
name in ``sys.modules``, which would shadow the standard library's ``secrets``.)
"""

import importlib.util
import pathlib

# Aliased: the py renderer sets the module globals salt, pillar, grains and opts after import.
import salt.fileclient as salt_fileclient
import salt.loader as salt_loader
import salt.template as salt_template
import salt.utils.yaml as salt_yaml

#: The checkout this pillar root belongs to (``<repo>/pillar/webstack/role_secrets.sls``).
REPO = pathlib.Path(__file__).resolve().parents[2]


def _utils(name):
    """``_utils/<name>.py`` of the checkout (pure standard library), loaded by path."""
    path = REPO / "_utils" / f"{name}.py"
    if not path.is_file():
        raise RuntimeError(f"{path}: missing (the pillar needs the checkout's _utils)")
    spec = importlib.util.spec_from_file_location(f"webstack_pillar_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _topology(client, saltenv):
    """The topology mapping (``topology.yaml`` from the pillar roots, as import_yaml reads it)."""
    path = client.cache_file("salt://topology.yaml", saltenv)
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        topology = salt_yaml.safe_load(handle)
    return topology if isinstance(topology, dict) else {}


def _site_secrets(client, saltenv):
    """``webstack:secrets`` of the site's secrets file, rendered as the pillar would; {} if none."""
    found = client.get_state("webstack_secrets", saltenv)
    if not found or not found.get("dest"):
        return {}
    renderers = salt_loader.render(__opts__, __salt__, file_client=client)
    data = salt_template.compile_template(
        found["dest"],
        renderers,
        __opts__["renderer"],
        __opts__["renderer_blacklist"],
        __opts__["renderer_whitelist"],
        saltenv=saltenv,
        sls="webstack_secrets",
        _pillar_rend=True,
    )
    webstack = data.get("webstack") if isinstance(data, dict) else None
    secrets = webstack.get("secrets") if isinstance(webstack, dict) else None
    return secrets if isinstance(secrets, dict) else {}


def _nodes(topology):
    nodes = topology.get("nodes")
    return [n for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []


def _roles(nodes, minion_id):
    """The roles of the one entry named ``minion_id``; none for no such entry, or for several."""
    entries = [n for n in nodes if n.get("name") == minion_id]
    if len(entries) != 1 or not isinstance(entries[0].get("roles"), list):
        return []
    return [role for role in entries[0]["roles"] if isinstance(role, str)]


def run():
    saltenv = globals().get("saltenv") or "base"
    client = salt_fileclient.get_file_client(__opts__, pillar=True)
    try:
        topology = _topology(client, saltenv)
        nodes = _nodes(topology)
        roles = _roles(nodes, __opts__["id"])  # the authenticated id, not the id grain
        if not roles:
            return {}
        db = topology.get("db")
        engine = db.get("engine") if isinstance(db, dict) else None
        cluster = _utils("webstack_topology_rules").is_cluster(engine, nodes)
        secrets = _site_secrets(client, saltenv)
        share = _utils("webstack_secrets").share(secrets, roles, engine, cluster)
    finally:
        getattr(client, "destroy", lambda: None)()  # a pillar client holds nothing to close
    return {"webstack": dict(secrets=share)} if share else {}
