"""
The topology's rules: what a valid ``topology/*.yaml`` is, and every problem of an invalid one.

Pure standard library, no Salt: ``_utils/webstack_topology.py`` (the derivation) loads this file as
its sibling, both under Salt's loader (``__utils__``) and from the checkout (the CLI, the lab). This
file loads its own siblings the same way: ``webstack_topology_schema.py`` (keys, character sets,
secret values, the lookup) and ``webstack_secrets.py`` (which secrets each role holds).
``problems`` returns every problem found, each starting with the offending key; it never raises,
whatever the shape of its input, and the derivation runs only on a topology without problems.
"""

import importlib.util
import ipaddress
import os


def _sibling(name):
    """``_utils/<name>.py`` next to this file (the checkout's, or the minion's extmods/utils)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"{name}_of_topology_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_schema = _sibling("webstack_topology_schema")
_secrets = _sibling("webstack_secrets")

ROLES = ("lb", "app", "db")
ENGINES = ("ferretdb", "mongodb")
TOP_LEVEL_KEYS = ("name", "master", "network", "vip", "db", "ports", "vrrp", "clients", "nodes")
#: ``master.minion_id``: the id of the master host's own minion, the site CA (it is no node).
MASTER_KEYS = ("address", "minion_id")
DEFAULT_CA_MINION = "ca"
NETWORK_KEYS = ("cidr", "gateway")
NODE_KEYS = ("name", "address", "roles", "priority")
VIP_KEYS = ("address", "prefix", "interface", "router_id")
DB_KEYS = ("engine", "replica_set", "name", "user")
VRRP_KEYS = ("profile",)
VRRP_PROFILES = ("default", "fast")
#: ``clients``: sources, besides the lbs and the node itself, that may reach an app node's nginx
#: directly (``direct_app_access``), and sources the lbs' per-client limits never throttle
#: (``unlimited``). Each entry is an IPv4 address or network, or ``gateway`` (network.gateway).
CLIENT_KEYS = ("direct_app_access", "unlimited")

#: Ports every node agrees on. Any of them can be overridden in the topology's ``ports`` mapping.
DEFAULT_PORTS = {
    "frontend": 80,  # haproxy on the VIP (plain http: a redirect to https by default)
    "https": 443,  # haproxy's TLS frontend on the VIP
    "stats": 8404,  # haproxy stats page + Prometheus exporter, on each lb's own address
    "app": 80,  # nginx on each app node's own address and 127.0.0.1 (direct access, allowlisted)
    "app_tls": 8443,  # nginx for the lbs: TLS, an lb's site-CA client certificate required
    "postgresql": 5432,
    "mongodb": 27017,
    "ferretdb": 27017,  # the sidecar, on 127.0.0.1 of each app node
    # FerretDB's debug listener: turned off, its port kept free should someone turn it on.
    "ferretdb_debug": 8088,
    # engine ferretdb with >= 3 db nodes (a Patroni cluster), on each db node's own address:
    "patroni": 8008,  # Patroni's REST API (health, leader, /cluster)
    "etcd_client": 2379,  # etcd, the DCS Patroni keeps its leader lock in
    "etcd_peer": 2380,  # etcd members among themselves (raft)
}

#: The ports each role binds on its node. A node's ports are one set (whatever address each binds:
#: the VIP, the node's own, 127.0.0.1), the union over its roles: they must all differ.
ROLE_PORTS = {
    "lb": ("frontend", "https", "stats"),
    "app": ("app", "app_tls", "ferretdb", "ferretdb_debug"),
    "db": ("postgresql", "patroni", "etcd_client", "etcd_peer", "mongodb"),
}
#: Ports only one engine binds; the Patroni cluster's only with a cluster.
ENGINE_PORTS = {
    "ferretdb": "ferretdb",
    "ferretdb_debug": "ferretdb",
    "postgresql": "ferretdb",
    "mongodb": "mongodb",
}
CLUSTER_ONLY_PORTS = ("patroni", "etcd_client", "etcd_peer")

#: Engine ferretdb: 1 db node = a single PostgreSQL; 3 or more = a Patroni cluster on etcd (a
#: quorum survives the loss of one node). Two cannot: either's loss leaves no majority. Engine
#: mongodb the same: a replica set of 2 has no primary once either member is lost.
CLUSTER_MIN_DB_NODES = 3

#: VRRP priority of the first lb; the next ones step down: order in the file = preference.
PRIORITY_TOP = 200
PRIORITY_STEP = 10

#: Kept for the callers of the previous rules: the table itself is ``webstack_secrets.py``.
CLUSTER_SECRETS = _secrets.CLUSTER_SECRETS
_SECRETS = "webstack:secrets"


def ipv4(value):
    if isinstance(value, bool) or not isinstance(value, str | ipaddress.IPv4Address):
        return None
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        return None


def _check_port(errors, key, value):
    if not _schema.is_int(value, 1, 65535):
        errors.append(
            f"{key}: {_schema.shown(value)} is not a TCP port (an integer from 1 to 65535)"
        )


def _roles(node):
    """A node's roles, only the known ones (never raises on a garbage entry)."""
    roles = node.get("roles") if isinstance(node, dict) else None
    if not isinstance(roles, list):
        return []
    return [role for role in ROLES if role in roles]


def ca_minion(topology):
    """The site CA's minion id (``master.minion_id``, default ``ca``)."""
    master = topology.get("master") if isinstance(topology, dict) else None
    return (
        master.get("minion_id", DEFAULT_CA_MINION)
        if isinstance(master, dict)
        else DEFAULT_CA_MINION
    )


def nodes_subnet(topology, errors):
    """The nodes' subnet: ``network.cidr``, or the VIP's address with ``vip.prefix``."""
    network = topology.get("network") or {}
    vip = topology.get("vip") or {}
    if not isinstance(network, dict):
        errors.append("network: must be a mapping with a 'cidr' key")
        return None
    if "cidr" in network:
        cidr = network["cidr"]
        try:
            if not isinstance(cidr, str):
                raise ValueError("not a string")
            return ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            errors.append(f"network.cidr: {_schema.shown(cidr)} is not an IPv4 network ({exc})")
            return None
    vip = vip if isinstance(vip, dict) else {}
    if _schema.is_int(vip.get("prefix"), 1, 32) and ipv4(vip.get("address")):
        return ipaddress.IPv4Network(f"{vip['address']}/{vip['prefix']}", strict=False)
    errors.append("network.cidr: missing (or give vip.prefix) - the nodes' subnet must be known")
    return None


def _validate_name(topology, errors):
    name = topology.get("name", "webstack")
    if not _schema.matches(_schema.SCOPE_RE, name):
        errors.append(
            f"name: {_schema.shown(name)} is not a valid topology name: letters, digits, '-' "
            "and '_', at most 63 (it lands in config files and names the Patroni cluster)"
        )


def _validate_master(topology, errors):
    """``master``: a mapping with an address and the CA minion's id; returns that id."""
    master = topology.get("master")
    if master is None:
        return DEFAULT_CA_MINION
    if not isinstance(master, dict):
        errors.append(
            f"master: {_schema.shown(master)} is not a mapping with address (and minion_id)"
        )
        return DEFAULT_CA_MINION
    _schema.unknown_keys(errors, master, MASTER_KEYS, "master")
    if "address" not in master:
        errors.append("master.address: missing (the salt-master's IPv4 address)")
    name = master.get("minion_id", DEFAULT_CA_MINION)
    if not _schema.matches(_schema.NAME_RE, name):
        errors.append(
            f"master.minion_id: {_schema.shown(name)} is not a valid minion id (lower-case "
            "letters, digits and '-'): the site CA's minion on the master host"
        )
    return name


def _validate_node_name(key, name, seen, errors):
    if not _schema.matches(_schema.NAME_RE, name):
        errors.append(
            f"{key}.name: {_schema.shown(name)} is not a valid node name "
            "(lower-case letters, digits and '-', it is also the minion id)"
        )
    elif name in seen:
        errors.append(f"{key}.name: duplicate name {name!r} (also {seen[name]})")
    else:
        seen[name] = f"{key}.name"


def _validate_node_roles(key, roles, errors):
    if not isinstance(roles, list) or not roles:
        errors.append(f"{key}.roles: must be a non-empty list of roles ({', '.join(ROLES)})")
        return
    for role in roles:
        if not isinstance(role, str) or role not in ROLES:
            errors.append(
                f"{key}.roles: unknown role {_schema.shown(role)} "
                f"(expected one of {', '.join(ROLES)})"
            )
    if len(set(map(repr, roles))) != len(roles):
        errors.append(f"{key}.roles: a role is listed twice")


def _validate_nodes(topology, ca, errors):
    """Each node's keys, name and roles (addresses: :func:`_validate_addresses`); the nodes."""
    nodes = topology.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        errors.append("nodes: must be a non-empty list of {name, address, roles}")
        return []
    seen_names = {}
    for index, node in enumerate(nodes):
        key = f"nodes[{index}]"
        if not isinstance(node, dict):
            errors.append(f"{key}: must be a mapping with name, address and roles")
            continue
        _schema.unknown_keys(errors, node, NODE_KEYS, key)
        if node.get("name") == ca and "name" in node:
            errors.append(
                f"{key}.name: {ca!r} is also master.minion_id (the site CA's minion on the "
                f"master host, default {DEFAULT_CA_MINION!r})"
            )
        else:
            _validate_node_name(key, node.get("name"), seen_names, errors)
        _validate_node_roles(key, node.get("roles"), errors)
    node_list = [n for n in nodes if isinstance(n, dict)]
    for role in ROLES:
        if not any(role in _roles(n) for n in node_list):
            errors.append(f"nodes: no node has the role {role!r} (at least one is required)")
    return node_list


def _addresses(topology, nodes):
    """Every ``(key, raw value)`` that must be a distinct host address of the nodes' subnet."""
    found = []
    master = topology.get("master")
    if isinstance(master, dict) and "address" in master:
        found.append(("master.address", master["address"]))
    network = topology.get("network")
    if isinstance(network, dict) and "gateway" in network:
        found.append(("network.gateway", network["gateway"]))
    raw = topology.get("nodes") if isinstance(topology.get("nodes"), list) else []
    found += [
        (f"nodes[{index}].address", node.get("address"))
        for index, node in enumerate(raw)
        if isinstance(node, dict)
    ]
    vip = topology.get("vip")
    if isinstance(vip, dict):
        found.append(("vip.address", vip.get("address")))
    return found


def _clash(key, address, other):
    if key.startswith("nodes["):
        return f"{key}: duplicate address {address} (also {other})"
    if other.startswith("nodes["):
        return f"{key}: {address} is also the address of {other.removesuffix('.address')}"
    return f"{key}: {address} is also {other}"


def _validate_addresses(topology, subnet, nodes, errors):
    """Nodes, VIP, master and gateway: each an IPv4 host address of the subnet, all distinct."""
    seen = {}
    for key, raw in _addresses(topology, nodes):
        address = ipv4(raw)
        if address is None:
            errors.append(f"{key}: {_schema.shown(raw)} is not an IPv4 address")
            continue
        if subnet is not None and address not in subnet:
            errors.append(f"{key}: {address} is outside the nodes' subnet {subnet}")
        elif (
            subnet is not None
            and subnet.prefixlen < 31
            and address
            in (
                subnet.network_address,
                subnet.broadcast_address,
            )
        ):
            errors.append(f"{key}: {address} is the network or broadcast address of {subnet}")
        if address in seen:
            errors.append(_clash(key, address, seen[address]))
        else:
            seen[address] = key


def _validate_vip(topology, subnet, errors):
    vip = topology.get("vip")
    if not isinstance(vip, dict):
        errors.append("vip: missing; must be a mapping with address, interface and router_id")
        return
    _schema.unknown_keys(errors, vip, VIP_KEYS, "vip")
    if "prefix" in vip:
        prefix = vip["prefix"]
        if not _schema.is_int(prefix, 1, 32):
            errors.append(f"vip.prefix: {_schema.shown(prefix)} is not a prefix length (1-32)")
        elif subnet is not None and prefix != subnet.prefixlen:
            errors.append(f"vip.prefix: /{prefix} differs from the nodes' subnet {subnet}")
    interface = vip.get("interface")
    if not _schema.matches(_schema.IFACE_RE, interface):
        errors.append(
            f"vip.interface: {_schema.shown(interface)} is not a network interface name "
            "(1-15 of A-Z a-z 0-9 _ . : -)"
        )
    router_id = vip.get("router_id")
    if not _schema.is_int(router_id, 1, 255):
        errors.append(f"vip.router_id: {_schema.shown(router_id)} is not a VRRP router id (1-255)")


def _validate_priorities(nodes, errors):
    seen = {}
    for index, node in enumerate(nodes):
        if "priority" not in node:
            continue
        key = f"nodes[{index}].priority"
        value = node["priority"]
        if "lb" not in _roles(node):
            errors.append(f"{key}: only lb nodes take a VRRP priority")
        elif not _schema.is_int(value, 1, 254):
            errors.append(f"{key}: {_schema.shown(value)} is not a VRRP priority (1-254)")
        elif value in seen:
            errors.append(f"{key}: duplicate VRRP priority {value} (also {seen[value]})")
        else:
            seen[value] = key
    lbs = [n for n in nodes if "lb" in _roles(n)]
    explicit = [n for n in lbs if "priority" in n]
    if len(lbs) > 1 + (PRIORITY_TOP - 1) // PRIORITY_STEP and len(explicit) < len(lbs):
        errors.append(
            f"nodes: {len(lbs)} lb nodes is more than derived priorities allow; "
            "set 'priority' on each"
        )


def _validate_db(topology, errors):
    db = topology.get("db")
    if not isinstance(db, dict):
        errors.append("db: missing; must be a mapping with an 'engine' key")
        return None
    _schema.unknown_keys(errors, db, DB_KEYS, "db")
    engine = db.get("engine")
    if not isinstance(engine, str) or engine not in ENGINES:
        errors.append(
            f"db.engine: unknown engine {_schema.shown(engine)} "
            f"(expected one of {', '.join(ENGINES)})"
        )
        engine = None
    if "replica_set" in db and not _schema.matches(_schema.REPLSET_RE, db["replica_set"]):
        errors.append(
            f"db.replica_set: {_schema.shown(db['replica_set'])} is not a valid replica set name "
            "(1-64 of A-Z a-z 0-9 _ -)"
        )
    for key in ("name", "user"):
        if key in db and not _schema.matches(_schema.DBIDENT_RE, db[key]):
            errors.append(
                f"db.{key}: {_schema.shown(db[key])} is not a valid database identifier "
                "(a-z, 0-9 and '_', not starting with a digit, at most 63)"
            )
    return engine


def db_nodes(nodes):
    return [n for n in nodes if "db" in _roles(n)]


def is_cluster(engine, nodes):
    """Engine ferretdb on 3 or more db nodes: PostgreSQL under Patroni, etcd as its DCS."""
    return engine == "ferretdb" and len(db_nodes(nodes)) >= CLUSTER_MIN_DB_NODES


def _validate_cluster(engine, nodes, errors):
    """1 db node, or enough for a majority to survive the loss of one (both engines)."""
    count = len(db_nodes(nodes))
    if not 1 < count < CLUSTER_MIN_DB_NODES:
        return
    if engine == "ferretdb":
        errors.append(
            f"nodes: {count} db nodes with engine ferretdb; use 1 (single PostgreSQL) or "
            f">= {CLUSTER_MIN_DB_NODES} (Patroni cluster with etcd quorum): with {count}, "
            "the loss of one leaves no majority to elect a new primary"
        )
    elif engine == "mongodb":
        errors.append(
            f"nodes: {count} db nodes with engine mongodb; use 1 or >= {CLUSTER_MIN_DB_NODES} "
            f"(a replica set with a majority): with {count}, the loss of one leaves no majority "
            "to elect a primary and the database read-only"
        )


def node_ports(roles, engine, cluster):
    """The port keys a node with ``roles`` binds (engine ``engine``, a Patroni ``cluster``)."""
    keys = [key for role in ROLES if role in roles for key in ROLE_PORTS[role]]
    return [
        key
        for key in dict.fromkeys(keys)
        if ENGINE_PORTS.get(key, engine) == engine and (cluster or key not in CLUSTER_ONLY_PORTS)
    ]


def _validate_ports(topology, errors):
    ports = topology.get("ports")
    if ports is None:
        return {}
    if not isinstance(ports, dict):
        errors.append("ports: must be a mapping of port name to number")
        return {}
    _schema.unknown_keys(errors, ports, tuple(DEFAULT_PORTS), "ports", kind="port")
    for key, value in ports.items():
        if key in DEFAULT_PORTS:
            _check_port(errors, f"ports.{key}", value)
    return ports


def _validate_port_clashes(ports, engine, nodes, errors):
    """Every port a node binds differs from its others; the offender is the one the file sets."""
    cluster = is_cluster(engine, nodes)
    clashes = {}
    for index, node in enumerate(nodes):
        name = node.get("name") if isinstance(node.get("name"), str) else f"nodes[{index}]"
        seen = {}
        for key in node_ports(_roles(node), engine, cluster):
            value = ports.get(key, DEFAULT_PORTS[key])
            if not _schema.is_int(value, 1, 65535):
                continue  # reported by the port checks
            if value not in seen:
                seen[value] = key
                continue
            pair = (key, seen[value])
            if pair[1] in ports and pair[0] not in ports:
                pair = (pair[1], pair[0])
            clashes.setdefault((*pair, value), []).append(name)
    for (key, other, value), names in clashes.items():
        errors.append(
            f"ports.{key}: {value} is also ports.{other} (both bound on {', '.join(names)})"
        )


def _validate_vrrp(topology, errors):
    vrrp = topology.get("vrrp")
    if vrrp is None:
        return
    if not isinstance(vrrp, dict):
        errors.append("vrrp: must be a mapping; only 'profile' may be set here (default or fast)")
        return
    _schema.unknown_keys(errors, vrrp, VRRP_KEYS, "vrrp")
    profile = vrrp.get("profile", "default")
    if not isinstance(profile, str) or profile not in VRRP_PROFILES:
        errors.append(f"vrrp.profile: {_schema.shown(profile)} is not a profile (default or fast)")


def _validate_network(topology, errors):
    network = topology.get("network")
    if isinstance(network, dict):
        _schema.unknown_keys(errors, network, NETWORK_KEYS, "network")


def client_sources(topology, key, errors=None):
    """The networks of ``clients.<key>`` as strings (``gateway`` resolved); bad entries reported."""
    clients = topology.get("clients") or {}
    entries = (clients.get(key) or []) if isinstance(clients, dict) else []
    if not isinstance(entries, list):
        if errors is not None:
            errors.append(f"clients.{key}: must be a list of addresses, networks or 'gateway'")
        return []
    network = topology.get("network")
    gateway = network.get("gateway") if isinstance(network, dict) else None
    sources = []
    for index, entry in enumerate(entries):
        value = gateway if entry == "gateway" else entry
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            sources.append(str(ipaddress.IPv4Network(value, strict=False)))
        except ValueError:
            if errors is not None:
                why = "network.gateway is not set" if entry == "gateway" else "not an IPv4 address"
                errors.append(f"clients.{key}[{index}]: {_schema.shown(entry)}: {why}")
    return sources


def _validate_clients(topology, errors):
    clients = topology.get("clients")
    if clients is None:
        return
    if not isinstance(clients, dict):
        errors.append(f"clients: must be a mapping with keys {', '.join(CLIENT_KEYS)}")
        return
    _schema.unknown_keys(errors, clients, CLIENT_KEYS, "clients")
    for key in CLIENT_KEYS:
        client_sources(topology, key, errors)


def _secret_scope(nodes, engine, cluster, node):
    """(required, allowed) secret keys: of every node (``node`` None), of one node, of none (the
    CA minion, a minion not in the topology)."""
    if node is None:
        role_lists = [_roles(n) for n in nodes]
    else:
        role_lists = [_roles(n) for n in nodes if n.get("name") == node][:1]
    required, allowed = {}, {}
    for roles in role_lists:
        required.update(dict.fromkeys(_secrets.required(roles, engine, cluster)))
        allowed.update(dict.fromkeys(_secrets.allowed(roles, engine, cluster)))
    return tuple(required), tuple(allowed)


def _given(secrets, key):
    value = secrets.get(key)
    return value is not None and value != ""


def _validate_secrets(secrets, engine, nodes, node, errors):
    """The secrets ``node`` needs (every node's without ``node``): present, valid values; no key
    outside the table. Keys the scope does not use are left alone (an operator may give all)."""
    if secrets is None:
        return
    if not isinstance(secrets, dict):
        errors.append(f"{_SECRETS}: must be a mapping (see pillar/webstack_secrets.sls.example)")
        return
    _schema.unknown_keys(errors, secrets, _secrets.ALL_SECRETS, _SECRETS, sep=":")
    required, allowed = _secret_scope(nodes, engine, is_cluster(engine, nodes), node)
    for key in allowed:
        if key in required or _given(secrets, key):
            problem = _schema.secret_problem(key, secrets.get(key))
            if problem:
                errors.append(f"{_SECRETS}:{key}: {problem}")
    for first, second in _schema.PAIRED_SECRETS:
        if first in allowed and _given(secrets, first) != _given(secrets, second):
            missing, present = (second, first) if _given(secrets, first) else (first, second)
            errors.append(f"{_SECRETS}:{missing}: missing; {present} needs it (they come together)")


def _validate_lookup(engine, lookup, errors):
    if lookup is None:
        return
    _schema.lookup_problems(lookup, errors)
    if engine != "ferretdb" or not isinstance(lookup, dict):
        return
    ferretdb = lookup.get("ferretdb")
    source = ferretdb.get("source") if isinstance(ferretdb, dict) else None
    if not isinstance(source, str) or not source.strip():
        errors.append(
            "webstack:lookup:ferretdb:source: missing; say where app nodes get the FerretDB binary "
            "(a salt:// path, or an https:// URL with source_hash; see "
            "pillar/webstack_local.sls.example)"
        )
    elif source.startswith(("http://", "https://", "ftp://")) and not ferretdb.get("source_hash"):
        errors.append("webstack:lookup:ferretdb:source_hash: required when the source is a URL")


def problems(topology, secrets=None, lookup=None, node=None):
    """Every problem of ``topology`` and, when given, of ``secrets`` and ``lookup``.

    ``node``: validate the secrets one minion holds (its own share: what its roles require;
    nothing for the CA minion ``master.minion_id`` or a minion outside the topology); without
    it, the site's whole secrets file (every node's share).
    """
    if not isinstance(topology, dict) or not topology:
        return [
            "webstack:topology: missing or not a mapping (is topology.yaml in the pillar roots?)"
        ]
    errors = []
    _schema.unknown_keys(errors, topology, TOP_LEVEL_KEYS, "", kind="top-level key")
    _validate_name(topology, errors)
    ca = _validate_master(topology, errors)
    nodes = _validate_nodes(topology, ca, errors)
    _validate_network(topology, errors)
    subnet = nodes_subnet(topology, errors)
    _validate_addresses(topology, subnet, nodes, errors)
    _validate_vip(topology, subnet, errors)
    _validate_priorities(nodes, errors)
    engine = _validate_db(topology, errors)
    ports = _validate_ports(topology, errors)
    _validate_port_clashes(ports, engine, nodes, errors)
    _validate_vrrp(topology, errors)
    _validate_clients(topology, errors)
    _validate_cluster(engine, nodes, errors)
    _validate_secrets(secrets, engine, nodes, node, errors)
    _validate_lookup(engine, lookup, errors)
    return errors
