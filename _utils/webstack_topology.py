"""
Derive every node's view of the webstack cluster from a valid topology: the one place where
addresses, ports, ``pg_hba`` rows, replica-set members, URIs and the deploy order are computed.

Pure standard library, no Salt. The rules (``webstack_topology_rules.py``, this file's sibling in
``_utils`` and in the minion's synced ``extmods/utils``) are loaded by path. Salt's loader serves
these functions as ``__utils__["webstack_topology.*"]`` (the execution module
``_modules/webstack_topology.py`` and the runner use them); the CLI and the lab load the file.
"""

import importlib.util
import logging
import os
import urllib.parse

log = logging.getLogger(__name__)


def _load_rules():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webstack_topology_rules.py")
    spec = importlib.util.spec_from_file_location("webstack_topology_rules_of_derive", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_rules = _load_rules()

#: Every pg_hba row needs a password from the network: scram-sha-256.
_SCRAM = "scram-sha-256"


class TopologyError(ValueError):
    """Raised by :func:`derive` on an invalid topology; ``errors`` lists every problem."""

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__("invalid topology: " + "; ".join(self.errors))


def problems(topology, secrets=None, lookup=None):
    """Every problem of ``topology`` (and of ``secrets``/``lookup`` when given), as strings."""
    return _rules.problems(topology, secrets, lookup)


def derive(topology):
    """
    The whole cluster's view of a topology: roles, VRRP priorities, ports, and what the states
    render (``pg_hba``, ``mongodb_members``, ``ferretdb_postgresql_hosts``, ``app_db_uri``,
    ``deploy_order``, ``db_cluster``). Raises :class:`TopologyError` listing every problem.
    """
    errors = _rules.problems(topology)
    if errors:
        raise TopologyError(errors)
    subnet = _rules.nodes_subnet(topology, [])
    nodes = [
        {"name": n["name"], "address": str(_rules.ipv4(n["address"])), "roles": list(n["roles"])}
        for n in topology["nodes"]
    ]
    lbs = _lbs(topology, nodes)
    apps = [n for n in nodes if "app" in n["roles"]]
    db = dict(topology["db"])
    db.setdefault("replica_set", "rs0")
    db.setdefault("name", "webstack")
    db.setdefault("user", "webstack")
    db_nodes = [n for n in nodes if "db" in n["roles"]]
    ports = {**_rules.DEFAULT_PORTS, **(topology.get("ports") or {})}
    name = topology.get("name", "webstack")
    db["cluster"] = _rules.is_cluster(db["engine"], nodes)
    db_cluster = _db_cluster(name, db_nodes, ports) if db["cluster"] else None
    cluster = {
        "name": name,
        "master": (topology.get("master") or {}).get("address"),
        "network": {
            "cidr": str(subnet),
            "prefix": subnet.prefixlen,
            "gateway": (topology.get("network") or {}).get("gateway"),
        },
        "vip": _vip(topology["vip"], subnet),
        "vrrp_profile": (topology.get("vrrp") or {}).get("profile", "default"),
        "db": db,
        "ports": ports,
        "nodes": nodes,
        "lb": lbs,
        "app": apps,
        # Who may reach an app node's nginx besides the node itself: the lbs, then the topology's
        # clients.direct_app_access; and who the lbs' per-client limits leave alone.
        "app_allowed_sources": [f"{n['address']}/32" for n in lbs]
        + _rules.client_sources(topology, "direct_app_access"),
        # The lbs as sources (nginx believes their X-Forwarded-For), and the app nodes as the
        # lbs' haproxy servers (nginx on each app node's own address).
        "lb_sources": [f"{n['address']}/32" for n in lbs],
        # haproxy reaches them over TLS, each proving itself to the other with its certificate.
        "app_servers": [
            {"name": n["name"], "address": f"{n['address']}:{ports['app_tls']}"} for n in apps
        ],
        # The client certificates nginx's TLS listener admits: the lbs' (by their names).
        "lb_names": [n["name"] for n in lbs],
        "client_limits_exempt": _rules.client_sources(topology, "unlimited"),
        "db_nodes": db_nodes,
        "db_cluster": db_cluster,
        "pg_hba": _pg_hba(db, apps, db_cluster),
        "mongodb_members": [f"{n['address']}:{ports['mongodb']}" for n in db_nodes],
        # The db node that initiates the replica set and adds members to it (engine mongodb).
        "mongodb_initiator": db_nodes[0]["name"],
        "ferretdb_postgresql_hosts": [f"{n['address']}:{ports['postgresql']}" for n in db_nodes],
        "app_db_uri": _app_db_uri(db, db_nodes, ports),
        "pki": _pki(topology, nodes, lbs),
        # orch.deploy: the app nodes one at a time (topology order), drained on every lb.
        "deploy_order": {"app": [n["name"] for n in apps], "lb": [n["name"] for n in lbs]},
    }
    log.debug(
        "webstack_topology: derived %s: %d nodes, engine %s%s",
        name,
        len(nodes),
        db["engine"],
        " (Patroni cluster)" if db["cluster"] else "",
    )
    return cluster


#: The master host's own minion, the site CA, when the topology does not name it.
DEFAULT_CA_MINION = "ca"


def _pki(topology, nodes, lbs):
    """
    The site CA's minion id and, per node, the names its certificate is issued for (the CA's
    signing policy for that node fixes them: a node cannot ask for another's name). An lb's
    certificate also names the VIP: it serves https://<VIP>/ unless the site brings its own; a db
    node's also loopback.
    """
    vip = str(_rules.ipv4(topology["vip"]["address"]))
    lb_names = {n["name"] for n in lbs}
    names = {}
    for n in nodes:
        san = [f"DNS:{n['name']}", f"IP:{n['address']}"]
        if n["name"] in lb_names:
            san.append(f"IP:{vip}")
        if "db" in n["roles"]:
            # Patroni reaches its own PostgreSQL over loopback (a replication connection, to
            # read the timeline) with the same sslmode=verify-full as to the leader.
            san += ["DNS:localhost", "IP:127.0.0.1"]
        names[n["name"]] = san
    master = topology.get("master") or {}
    return {"ca_minion": master.get("minion_id") or DEFAULT_CA_MINION, "names": names}


def _lbs(topology, nodes):
    """The lbs in topology order, each with its VRRP priority (explicit, else stepping down)."""
    lbs = [dict(n) for n in nodes if "lb" in n["roles"]]
    explicit = {n["name"]: n["priority"] for n in topology["nodes"] if "priority" in n}
    for index, lb in enumerate(lbs):
        lb["priority"] = explicit.get(
            lb["name"], _rules.PRIORITY_TOP - _rules.PRIORITY_STEP * index
        )
    return lbs


def _vip(vip, subnet):
    return {
        "address": str(_rules.ipv4(vip["address"])),
        "prefix": subnet.prefixlen,
        "interface": vip["interface"],
        "router_id": vip["router_id"],
    }


def _hba(kind, database, user, address=None, *, node=None, role=None, method=_SCRAM):
    """One pg_hba row. ``role``: a role Patroni creates, named by the state tree's
    ``patroni.users[role]`` (``user`` is then None); ``node``: whose address the row admits."""
    return {
        "type": kind,
        "database": database,
        "user": user,
        "address": address,
        "method": method,
        "node": node,
        "role": role,
    }


def _pg_hba(db, apps, db_cluster):
    """
    PostgreSQL's pg_hba rows, in order (engine ferretdb; none for mongodb): local peer, loopback
    with a password, then, in a Patroni cluster, every db node for streaming replication and
    pg_rewind, and every app node (its FerretDB sidecar) for the app's database and user only.
    """
    if db["engine"] != "ferretdb":
        return []
    # From the network only over TLS (hostssl): a client without it finds no row and is refused.
    app_rows = [
        _hba("hostssl", db["name"], db["user"], f"{n['address']}/32", node=n["name"]) for n in apps
    ]
    if db_cluster is None:
        return [
            _hba("local", "all", "postgres", method="peer"),
            _hba("local", "all", "all", method="peer"),
            _hba("host", "all", "all", "127.0.0.1/32"),
            *app_rows,
        ]
    rows = [_hba("local", "all", "all", method="peer"), _hba("host", "all", "all", "127.0.0.1/32")]
    for member in db_cluster["members"]:
        address = f"{member['address']}/32"
        name = member["name"]
        rows.append(_hba("hostssl", "replication", None, address, node=name, role="replication"))
        rows.append(_hba("hostssl", "postgres", None, address, node=name, role="rewind"))
    return rows + app_rows


def _app_db_uri(db, db_nodes, ports):
    """
    The app's MongoDB URI as a ``str.format`` template without its secret: the state fills
    ``{password}`` (urlencoded) and, for engine ferretdb, ``{ferretdb_listen}`` (the sidecar's
    address on the app node, a state-tree parameter). ferretdb: the local sidecar with PLAIN
    (FerretDB hands the credentials to PostgreSQL); mongodb: every db node, with the replica set.
    """
    user = urllib.parse.quote(db["user"], safe="")
    if db["engine"] == "ferretdb":
        where = f"{{ferretdb_listen}}:{ports['ferretdb']}"
        options = "authMechanism=PLAIN"
    else:
        where = ",".join(f"{n['address']}:{ports['mongodb']}" for n in db_nodes)
        options = f"replicaSet={db['replica_set']}&authSource={db['name']}"
    return f"mongodb://{user}:{{password}}@{where}/{db['name']}?{options}"


def _db_cluster(name, db_nodes, ports):
    """
    What Patroni and etcd need, in topology order: the Patroni scope (the topology's name), one
    member per db node (Patroni name = etcd name = node name; its REST API, PostgreSQL and etcd
    URLs on the node's address), etcd's ``initial-cluster`` and the etcd hosts Patroni talks to.
    """
    members = [
        {
            "name": n["name"],
            "address": n["address"],
            "postgresql": f"{n['address']}:{ports['postgresql']}",
            # PostgreSQL listens on loopback too (local clients, Salt's postgres states).
            "postgresql_listen": f"127.0.0.1,{n['address']}:{ports['postgresql']}",
            "patroni_api": f"{n['address']}:{ports['patroni']}",
            # TLS everywhere, client certificates required (README "Security").
            "patroni_url": f"https://{n['address']}:{ports['patroni']}",
            "etcd_client_url": f"https://{n['address']}:{ports['etcd_client']}",
            # etcd answers its clients on loopback too (etcdctl, Salt's checks).
            "etcd_listen_client_urls": f"https://{n['address']}:{ports['etcd_client']},"
            f"https://127.0.0.1:{ports['etcd_client']}",
            "etcd_peer_url": f"https://{n['address']}:{ports['etcd_peer']}",
        }
        for n in db_nodes
    ]
    return {
        "scope": name,
        "members": members,
        "etcd_hosts": [f"{n['address']}:{ports['etcd_client']}" for n in db_nodes],
        "etcd_initial_cluster": ",".join(f"{m['name']}={m['etcd_peer_url']}" for m in members),
        # Distinguishes this cluster's etcd members from any other cluster's on the same network.
        "etcd_token": f"{name}-etcd",
    }


def node(name, topology):
    """
    Node ``name``'s view: the derived cluster plus ``self`` (its own entry, ``roles`` empty when
    it is not in the topology), for an lb its VRRP ``priority`` and unicast ``peers``, with a db
    cluster ``db_member`` (this db node's Patroni/etcd member entry, None on other nodes).

    On an invalid topology, ``{"valid": False, "errors": [...], "roles": []}`` (no exception), so
    that templates can render only the validation state and let it fail clearly.
    """
    try:
        cluster = derive(topology)
    except TopologyError as exc:
        log.debug("webstack_topology: %s: invalid topology (%d errors)", name, len(exc.errors))
        return {"valid": False, "errors": exc.errors, "name": name, "roles": []}
    me = next((n for n in cluster["nodes"] if n["name"] == name), None)
    view = dict(cluster, valid=True, errors=[], name=name, topology=cluster["name"])
    view["self"] = me or {"name": name, "address": None, "roles": []}
    view["roles"] = list(view["self"]["roles"])
    lb = next((n for n in cluster["lb"] if n["name"] == name), None)
    if lb is not None:
        view["priority"] = lb["priority"]
        view["peers"] = [n["address"] for n in cluster["lb"] if n["name"] != name]
    if cluster["db_cluster"]:
        members = cluster["db_cluster"]["members"]
        # This db node's own member entry (Patroni/etcd name, URLs on its address), else None.
        view["db_member"] = next((m for m in members if m["name"] == name), None)
    log.debug("webstack_topology: view of %s: roles %s", name, ",".join(view["roles"]) or "none")
    return view
