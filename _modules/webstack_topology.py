"""
Validate the webstack topology and derive every node's view of the cluster from it.

The topology file (``topology/*.yaml``) is the only place where node names, addresses and roles are
written. Everything else (haproxy servers, keepalived priorities and unicast peers, PostgreSQL's
``pg_hba``, replica-set members, Patroni/etcd members, the app's database URI, the deploy order) is
derived in one place, so that the states, the orchestration, the Vagrantfile and the lab agree.

Layout: the rules are stdlib-only ``_utils/webstack_topology_rules.py`` (validation) and
``_utils/webstack_topology.py`` (derivation); this file is their Salt face (``__utils__``) and CLI.
Run or imported as a plain file (the Vagrantfile, the lab), it loads them from the checkout::

    python3 _modules/webstack_topology.py validate topology/lab.yaml
    python3 _modules/webstack_topology.py validate topology/lab.yaml --secrets webstack_secrets.sls
    python3 _modules/webstack_topology.py derive topology/lab.yaml --json

Salt is never imported here: nothing may need more than the standard library (PyYAML is used only
when the CLI reads a ``.yaml`` file and it is importable; JSON always works).
"""

import importlib.util
import json
import logging
import os
import sys

log = logging.getLogger(__name__)

__virtualname__ = "webstack_topology"

#: The derivation's utils module (``_utils/webstack_topology.py``): ``__utils__`` names its
#: functions ``webstack_topology.<function>``.
_UTILS = "webstack_topology"
_checkout_module = []


def __virtual__():
    if "__utils__" in globals() and f"{_UTILS}.derive" not in __utils__:
        return (
            False,
            "webstack_topology: the webstack_topology utils module is not synced (_utils)",
        )
    return __virtualname__


def _checkout():
    """``_utils/webstack_topology.py`` of this file's checkout (the CLI, the lab, the tests)."""
    if not _checkout_module:
        here = os.path.dirname(os.path.realpath(__file__))
        path = os.path.join(os.path.dirname(here), "_utils", f"{_UTILS}.py")
        spec = importlib.util.spec_from_file_location("webstack_topology_checkout_utils", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _checkout_module.append(module)
    return _checkout_module[0]


def _lib(name):
    """Function ``name`` of the derivation: the loader's ``__utils__`` under Salt, else the file."""
    utils = globals().get("__utils__")
    if utils is not None and f"{_UTILS}.{name}" in utils:
        return utils[f"{_UTILS}.{name}"]
    return getattr(_checkout(), name)


def __getattr__(name):
    # ``TopologyError`` (what derive raises), for callers that load this file (the lab).
    if name == "TopologyError":
        return _checkout().TopologyError
    raise AttributeError(name)


def validate(topology=None, secrets=None, lookup=None, node=None):
    """
    Check a topology (and, when given, the secrets and lookup) and return every problem found.

    topology
        The topology mapping. Defaults to pillar ``webstack:topology``.
    secrets
        The secrets mapping. Defaults to pillar ``webstack:secrets`` (checked only when called
        through Salt, or when passed explicitly).
    lookup
        Pillar ``webstack:lookup`` overrides: the paths, names and words that land in files, and
        the ones without a default (the FerretDB binary's source for the ferretdb engine). Same
        defaulting as ``secrets``.
    node
        Whose secrets to check: a minion holds only its own share, so it must have what its own
        roles need (the CA minion, ``master.minion_id``, needs none). Defaults, when the pillar is
        read, to this minion's id; with an explicit ``topology`` and no ``node``, the secrets are
        checked as a whole site's (every node's share).

    Returns ``{"valid": bool, "errors": [str, ...]}``; each error starts with the offending key.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_topology.validate
    """
    if topology is None:
        topology = _pillar("webstack:topology")
        if secrets is None:
            secrets = _pillar("webstack:secrets") or {}
        if lookup is None:
            lookup = _pillar("webstack:lookup") or {}
        if node is None:
            node = _minion_id()
    errors = _lib("problems")(topology, secrets, lookup, node=node)
    log.debug("webstack_topology.validate (%s): %d errors", node or "site", len(errors))
    return {"valid": not errors, "errors": errors}


def _minion_id():
    """This minion's id: ``__opts__['id']``, else the ``id`` grain."""
    opts = globals().get("__opts__") or {}
    return opts.get("id") or (globals().get("__grains__") or {}).get("id")


def derive(topology=None):
    """
    Derive the whole cluster's view from a topology: roles, VRRP priorities and peers, ports,
    what the states and the orchestration render (``pg_hba`` rows, ``mongodb_members``,
    ``ferretdb_postgresql_hosts``, ``app_db_uri`` without its password, ``deploy_order``), and
    for engine ferretdb on 3+ db nodes (``db.cluster`` true) the Patroni/etcd cluster
    (``db_cluster``: scope, members, etcd's initial cluster and hosts; None otherwise).

    Raises an error listing every problem when the topology is invalid (secrets are not checked).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_topology.derive
    """
    if topology is None:
        topology = _pillar("webstack:topology")
    log.debug("webstack_topology.derive")
    return _lib("derive")(topology)


def node(name=None, topology=None):
    """
    This minion's view of the cluster: the derived cluster plus ``self`` (its own entry, with
    ``roles`` empty when the minion is not in the topology) and, for an lb, its VRRP ``priority``
    and unicast ``peers`` (the other lbs); with a db cluster, ``db_member`` (this db node's
    Patroni/etcd member entry, None on other nodes).

    On an invalid topology, returns ``{"valid": False, "errors": [...], "roles": []}`` rather than
    raising, so that templates can render only the validation state and let it fail clearly.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_topology.node
        salt-call webstack_topology.node name=lb2
    """
    if name is None:
        name = __grains__["id"]
    if topology is None:
        topology = _pillar("webstack:topology")
    log.debug("webstack_topology.node %s", name)
    return _lib("node")(name, topology)


def _pillar(key):
    # Read __pillar__ directly: Salt 3008's pillar.get masks secrets in modules unless unmask=True.
    # __pillar__ is a loader context object (dict-like, not a dict) until the first lookup.
    first, *rest = key.split(":")
    data = __pillar__.get(first)
    for part in rest:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


# --------------------------------------------------------------------------------------------------
# Command line (used by the lab and the Vagrantfile: one set of rules)
# --------------------------------------------------------------------------------------------------


def _load(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith((".yaml", ".yml", ".sls", ".example")):
        try:
            import yaml  # pylint: disable=import-outside-toplevel
        except ImportError:
            # JSON is a subset of YAML: a caller without PyYAML can convert and pass JSON instead.
            sys.exit(
                f"{path}: PyYAML is not installed; pass the topology as JSON ('-' reads stdin)"
            )
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            sys.exit(f"{path}: not valid YAML: {exc}")
    try:
        return json.loads(text)
    except ValueError as exc:
        sys.exit(f"{path}: not valid JSON: {exc}")


def _secrets_of(path):
    """The ``webstack:secrets`` mapping of a secrets file (``webstack_secrets.sls``: YAML or
    JSON, either ``{webstack: {secrets: {...}}}`` or the bare mapping)."""
    data = _load(path)
    if isinstance(data, dict) and isinstance(data.get("webstack"), dict):
        return data["webstack"].get("secrets")
    return data


def main(argv=None):
    """``validate FILE [--secrets FILE]`` exits 1 listing every error (the secrets file checked
    as a whole site's: every node's share); ``derive FILE`` prints the derived view."""
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: webstack_topology.py {validate|derive} FILE|- [--json] [--secrets FILE]"
    if len(argv) < 2 or argv[0] not in ("validate", "derive"):
        print(usage, file=sys.stderr)
        return 2
    command, path = argv[0], argv[1]
    secrets = None
    if "--secrets" in argv:
        index = argv.index("--secrets")
        if index + 1 >= len(argv):
            print(usage, file=sys.stderr)
            return 2
        secrets_path = argv[index + 1]
        try:
            secrets = _secrets_of(secrets_path) or {}
        except (OSError, ValueError) as exc:
            print(f"{secrets_path}: cannot read secrets: {exc}", file=sys.stderr)
            return 1
    try:
        topology = json.load(sys.stdin) if path == "-" else _load(path)
    except (OSError, ValueError) as exc:
        print(f"{path}: cannot read topology: {exc}", file=sys.stderr)
        return 1
    errors = _lib("problems")(topology, secrets)
    if errors:
        print(f"{path}: invalid topology:", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        return 1
    if command == "derive":
        print(json.dumps(_lib("derive")(topology), indent=None if "--json" in argv else 2))
    else:
        checked = "" if secrets is None else ", secrets valid"
        print(f"{path}: valid ({len(topology['nodes'])} nodes){checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
