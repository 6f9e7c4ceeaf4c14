"""
The topology's rules: what a valid ``topology/*.yaml`` is, and every problem of an invalid one.

Pure standard library, no Salt: ``_utils/webstack_topology.py`` (the derivation) loads this file as
its sibling, both under Salt's loader (``__utils__``) and from the checkout (the CLI, the lab).
``errors`` returns every problem found, each starting with the offending key.
"""

import ipaddress
import re

ROLES = ("lb", "app", "db")
ENGINES = ("ferretdb", "mongodb")
TOP_LEVEL_KEYS = ("name", "master", "network", "vip", "db", "ports", "vrrp", "clients", "nodes")
NODE_KEYS = ("name", "address", "roles", "priority")
VIP_KEYS = ("address", "prefix", "interface", "router_id")
DB_KEYS = ("engine", "replica_set", "name", "user")
#: ``clients``: sources, besides the lbs and the node itself, that may reach an app node's nginx
#: directly (``direct_app_access``), and sources the lbs' per-client limits never throttle
#: (``unlimited``). Each entry is an IPv4 address or network, or ``gateway`` (network.gateway).
CLIENT_KEYS = ("direct_app_access", "unlimited")

#: Ports every node agrees on. Any of them can be overridden in the topology's ``ports`` mapping.
DEFAULT_PORTS = {
    "frontend": 80,  # haproxy on the VIP (redirects to https unless told otherwise)
    "https": 443,  # haproxy on the VIP, TLS
    "stats": 8404,  # haproxy stats page + Prometheus exporter, on each lb's own address
    "app": 80,  # nginx on each app node's own address (direct access, allowlisted)
    "app_tls": 8443,  # nginx for the lbs: TLS, an lb's site-CA client certificate required
    "postgresql": 5432,
    "mongodb": 27017,
    "ferretdb": 27017,  # the sidecar, on 127.0.0.1 of each app node
    # engine ferretdb with >= 3 db nodes (a Patroni cluster), on each db node's own address:
    "patroni": 8008,  # Patroni's REST API (health, leader, /cluster)
    "etcd_client": 2379,  # etcd, the DCS Patroni keeps its leader lock in
    "etcd_peer": 2380,  # etcd members among themselves (raft)
}

#: Ports that share a db node's address in a Patroni cluster: they must differ.
CLUSTER_PORTS = ("postgresql", "patroni", "etcd_client", "etcd_peer")

#: Engine ferretdb: 1 db node = a single PostgreSQL; 3 or more = a Patroni cluster on etcd (a
#: quorum survives the loss of one node). Two cannot: either's loss leaves no majority.
CLUSTER_MIN_DB_NODES = 3

#: The app refuses shorter keys (app/webstack_app/config.py MIN_SECRET_KEY_LENGTH).
MIN_APP_SECRET_KEY = 16

#: VRRP priority of the first lb; the next ones step down: order in the file = preference.
PRIORITY_TOP = 200
PRIORITY_STEP = 10

#: Secrets that must be in pillar (``webstack:secrets``) for every engine, then per engine.
REQUIRED_SECRETS = ("stats_password", "app_secret_key", "db_password")
ENGINE_SECRETS = {
    "ferretdb": (),
    "mongodb": ("mongodb_keyfile", "mongodb_admin_password"),
}
#: Engine ferretdb with a Patroni cluster only: PostgreSQL's superuser, replication and pg_rewind
#: roles (Patroni creates them at bootstrap) and the user of Patroni's REST API (its unsafe
#: endpoints: restart, reload, switchover... need it; reading stays open).
CLUSTER_SECRETS = (
    "postgres_superuser_password",
    "postgres_replication_password",
    "postgres_rewind_password",
    "patroni_rest_password",
)

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_IFACE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_REPLSET_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DBIDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SCOPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def ipv4(value):
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        return None


def _check_port(errors, key, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        errors.append(f"{key}: {value!r} is not a TCP port (an integer from 1 to 65535)")


def nodes_subnet(topology, errors):
    """The nodes' subnet: ``network.cidr``, or the VIP's address with ``vip.prefix``."""
    network = topology.get("network") or {}
    vip = topology.get("vip") or {}
    if not isinstance(network, dict):
        errors.append("network: must be a mapping with a 'cidr' key")
        return None
    if "cidr" in network:
        try:
            return ipaddress.IPv4Network(str(network["cidr"]), strict=True)
        except ValueError as exc:
            errors.append(f"network.cidr: {network['cidr']!r} is not an IPv4 network ({exc})")
            return None
    if isinstance(vip, dict) and "prefix" in vip and ipv4(vip.get("address")):
        try:
            return ipaddress.IPv4Network(f"{vip['address']}/{vip['prefix']}", strict=False)
        except ValueError:
            return None  # reported by the vip checks
    errors.append("network.cidr: missing (or give vip.prefix) - the nodes' subnet must be known")
    return None


def _validate_node_name(key, name, seen, errors):
    if not isinstance(name, str) or not _NAME_RE.match(name):
        errors.append(
            f"{key}.name: {name!r} is not a valid node name "
            "(lower-case letters, digits and '-', it is also the minion id)"
        )
    elif name in seen:
        errors.append(f"{key}.name: duplicate name {name!r} (also {seen[name]})")
    else:
        seen[name] = f"{key}.name"


def _validate_node_address(key, value, seen, errors):
    address = ipv4(value)
    if address is None:
        errors.append(f"{key}.address: {value!r} is not an IPv4 address")
    elif str(address) in seen:
        errors.append(f"{key}.address: duplicate address {address} (also {seen[str(address)]})")
    else:
        seen[str(address)] = f"{key}.address"


def _validate_node_roles(key, roles, errors):
    if not isinstance(roles, list) or not roles:
        errors.append(f"{key}.roles: must be a non-empty list of roles ({', '.join(ROLES)})")
        return
    for role in roles:
        if role not in ROLES:
            errors.append(
                f"{key}.roles: unknown role {role!r} (expected one of {', '.join(ROLES)})"
            )
    if len(set(map(str, roles))) != len(roles):
        errors.append(f"{key}.roles: a role is listed twice")


def _validate_nodes(topology, errors):
    nodes = topology.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        errors.append("nodes: must be a non-empty list of {name, address, roles}")
        return []
    seen_names, seen_addresses = {}, {}
    master = topology.get("master")
    if isinstance(master, dict) and ipv4(master.get("address")):
        seen_addresses[str(ipv4(master["address"]))] = "master.address"
    for index, node in enumerate(nodes):
        key = f"nodes[{index}]"
        if not isinstance(node, dict):
            errors.append(f"{key}: must be a mapping with name, address and roles")
            continue
        for extra in sorted(set(node) - set(NODE_KEYS)):
            errors.append(f"{key}.{extra}: unknown key (expected one of {', '.join(NODE_KEYS)})")
        _validate_node_name(key, node.get("name"), seen_names, errors)
        _validate_node_address(key, node.get("address"), seen_addresses, errors)
        _validate_node_roles(key, node.get("roles"), errors)
    node_list = [n for n in nodes if isinstance(n, dict)]
    for role in ROLES:
        if not any(isinstance(n.get("roles"), list) and role in n["roles"] for n in node_list):
            errors.append(f"nodes: no node has the role {role!r} (at least one is required)")
    return node_list


def _validate_vip_address(topology, subnet, nodes, errors):
    vip = topology["vip"]
    address = ipv4(vip.get("address"))
    if address is None:
        errors.append(f"vip.address: {vip.get('address')!r} is not an IPv4 address")
        return
    for index, node in enumerate(nodes):
        if str(ipv4(node.get("address"))) == str(address):
            errors.append(f"vip.address: {address} is also the address of nodes[{index}]")
    master = topology.get("master")
    if isinstance(master, dict) and str(ipv4(master.get("address"))) == str(address):
        errors.append(f"vip.address: {address} is also master.address")
    if subnet is None:
        return
    if address not in subnet:
        errors.append(f"vip.address: {address} is outside the nodes' subnet {subnet}")
    elif address in (subnet.network_address, subnet.broadcast_address):
        errors.append(f"vip.address: {address} is the network or broadcast address of {subnet}")


def _validate_vip(topology, subnet, nodes, errors):
    vip = topology.get("vip")
    if not isinstance(vip, dict):
        errors.append("vip: missing; must be a mapping with address, interface and router_id")
        return
    for extra in sorted(set(vip) - set(VIP_KEYS)):
        errors.append(f"vip.{extra}: unknown key (expected one of {', '.join(VIP_KEYS)})")
    _validate_vip_address(topology, subnet, nodes, errors)
    if "prefix" in vip:
        prefix = vip["prefix"]
        if isinstance(prefix, bool) or not isinstance(prefix, int) or not 1 <= prefix <= 32:
            errors.append(f"vip.prefix: {prefix!r} is not a prefix length (1-32)")
        elif subnet is not None and prefix != subnet.prefixlen:
            errors.append(f"vip.prefix: /{prefix} differs from the nodes' subnet {subnet}")
    interface = vip.get("interface")
    if not isinstance(interface, str) or not _IFACE_RE.match(interface):
        errors.append(f"vip.interface: {interface!r} is not a network interface name")
    router_id = vip.get("router_id")
    if isinstance(router_id, bool) or not isinstance(router_id, int) or not 1 <= router_id <= 255:
        errors.append(f"vip.router_id: {router_id!r} is not a VRRP router id (1-255)")


def _validate_priorities(nodes, errors):
    seen = {}
    for index, node in enumerate(nodes):
        if "priority" not in node:
            continue
        key = f"nodes[{index}].priority"
        value = node["priority"]
        if not isinstance(node.get("roles"), list) or "lb" not in node["roles"]:
            errors.append(f"{key}: only lb nodes take a VRRP priority")
        elif isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 254:
            errors.append(f"{key}: {value!r} is not a VRRP priority (1-254)")
        elif value in seen:
            errors.append(f"{key}: duplicate VRRP priority {value} (also {seen[value]})")
        else:
            seen[value] = key


def _validate_subnet_membership(subnet, nodes, topology, errors):
    if subnet is None:
        return
    for index, node in enumerate(nodes):
        address = ipv4(node.get("address"))
        if address is not None and address not in subnet:
            errors.append(
                f"nodes[{index}].address: {address} is outside the nodes' subnet {subnet}"
            )
    network = topology.get("network") or {}
    if isinstance(network, dict) and "gateway" in network:
        gateway = ipv4(network["gateway"])
        if gateway is None or gateway not in subnet:
            errors.append(f"network.gateway: {network['gateway']!r} is not an address in {subnet}")


def _validate_db(topology, errors):
    db = topology.get("db")
    if not isinstance(db, dict):
        errors.append("db: missing; must be a mapping with an 'engine' key")
        return None
    for extra in sorted(set(db) - set(DB_KEYS)):
        errors.append(f"db.{extra}: unknown key (expected one of {', '.join(DB_KEYS)})")
    engine = db.get("engine")
    if engine not in ENGINES:
        errors.append(
            f"db.engine: unknown engine {engine!r} (expected one of {', '.join(ENGINES)})"
        )
        engine = None
    if "replica_set" in db and not (
        isinstance(db["replica_set"], str) and _REPLSET_RE.match(db["replica_set"])
    ):
        errors.append(f"db.replica_set: {db['replica_set']!r} is not a valid replica set name")
    for key in ("name", "user"):
        if key in db and not (isinstance(db[key], str) and _DBIDENT_RE.match(db[key])):
            errors.append(f"db.{key}: {db[key]!r} is not a valid database identifier")
    return engine


def db_nodes(nodes):
    return [n for n in nodes if isinstance(n.get("roles"), list) and "db" in n["roles"]]


def is_cluster(engine, nodes):
    """Engine ferretdb on 3 or more db nodes: PostgreSQL under Patroni, etcd as its DCS."""
    return engine == "ferretdb" and len(db_nodes(nodes)) >= CLUSTER_MIN_DB_NODES


def _validate_cluster(topology, engine, nodes, errors):
    """Engine ferretdb: 1 db node or a cluster with a quorum; its ports must not collide."""
    count = len(db_nodes(nodes))
    if engine == "ferretdb" and 1 < count < CLUSTER_MIN_DB_NODES:
        errors.append(
            f"nodes: {count} db nodes with engine ferretdb; use 1 (single PostgreSQL) or "
            f">= {CLUSTER_MIN_DB_NODES} (Patroni cluster with etcd quorum): with {count}, "
            "the loss of one leaves no majority to elect a new primary"
        )
    if not is_cluster(engine, nodes):
        return
    name = topology.get("name", "webstack")
    if not (isinstance(name, str) and _SCOPE_RE.match(name)):
        errors.append(
            f"name: {name!r} names the Patroni cluster (its scope) with {count} db nodes: "
            "letters, digits, '-' and '_', at most 63"
        )
    ports = topology.get("ports") or {}
    if isinstance(ports, dict):
        seen = {}
        for key in CLUSTER_PORTS:
            value = ports.get(key, DEFAULT_PORTS[key])
            if isinstance(value, bool) or not isinstance(value, int):
                continue  # reported by the port checks
            if value in seen:
                errors.append(
                    f"ports.{key}: {value!r} is also ports.{seen[value]} "
                    "(both listen on each db node's address)"
                )
            else:
                seen[value] = key


def _validate_secrets(engine, secrets, errors, cluster=False):
    if secrets is None:
        return
    if not isinstance(secrets, dict):
        errors.append(
            "webstack:secrets: must be a mapping (see pillar/webstack_secrets.sls.example)"
        )
        return
    required = REQUIRED_SECRETS + ENGINE_SECRETS.get(engine, ())
    for key in required + (CLUSTER_SECRETS if cluster else ()):
        value = secrets.get(key)
        if not isinstance(value, str) or not value.strip():
            errors.append(
                f"webstack:secrets:{key}: missing or empty "
                "(see pillar/webstack_secrets.sls.example)"
            )
    app_key = secrets.get("app_secret_key")
    if isinstance(app_key, str) and app_key.strip() and len(app_key) < MIN_APP_SECRET_KEY:
        errors.append(
            f"webstack:secrets:app_secret_key: {len(app_key)} characters, "
            f"at least {MIN_APP_SECRET_KEY} needed (it signs the app's forms)"
        )
    keyfile = secrets.get("mongodb_keyfile")
    if engine == "mongodb" and isinstance(keyfile, str) and keyfile.strip():
        if not 6 <= len(keyfile.strip()) <= 1024 or not re.match(r"^[A-Za-z0-9+/=\s]+$", keyfile):
            errors.append(
                "webstack:secrets:mongodb_keyfile: must be 6-1024 base64 characters "
                "(MongoDB's rule)"
            )


def client_sources(topology, key, errors=None):
    """The networks of ``clients.<key>`` as strings (``gateway`` resolved); bad entries reported."""
    clients = topology.get("clients") or {}
    entries = (clients.get(key) or []) if isinstance(clients, dict) else []
    if not isinstance(entries, list):
        if errors is not None:
            errors.append(f"clients.{key}: must be a list of addresses, networks or 'gateway'")
        return []
    gateway = (topology.get("network") or {}).get("gateway")
    sources = []
    for index, entry in enumerate(entries):
        value = gateway if entry == "gateway" else entry
        try:
            sources.append(str(ipaddress.IPv4Network(str(value), strict=False)))
        except ValueError:
            if errors is not None:
                why = "network.gateway is not set" if entry == "gateway" else "not an IPv4 address"
                errors.append(f"clients.{key}[{index}]: {entry!r}: {why}")
    return sources


def _validate_clients(topology, errors):
    clients = topology.get("clients")
    if clients is None:
        return
    if not isinstance(clients, dict):
        errors.append(f"clients: must be a mapping with keys {', '.join(CLIENT_KEYS)}")
        return
    for extra in sorted(set(clients) - set(CLIENT_KEYS)):
        errors.append(f"clients.{extra}: unknown key (expected one of {', '.join(CLIENT_KEYS)})")
    for key in CLIENT_KEYS:
        client_sources(topology, key, errors)


def _validate_lookup(engine, lookup, errors):
    if lookup is None or engine != "ferretdb":
        return
    ferretdb = lookup.get("ferretdb") if isinstance(lookup, dict) else None
    source = ferretdb.get("source") if isinstance(ferretdb, dict) else None
    if not isinstance(source, str) or not source.strip():
        errors.append(
            "webstack:lookup:ferretdb:source: missing; say where app nodes get the FerretDB binary "
            "(a salt:// path, or an https:// URL with source_hash; see "
            "pillar/webstack_local.sls.example)"
        )
    elif source.startswith(("http://", "https://", "ftp://")) and not ferretdb.get("source_hash"):
        errors.append("webstack:lookup:ferretdb:source_hash: required when the source is a URL")


def problems(topology, secrets=None, lookup=None):
    errors = []
    if not isinstance(topology, dict) or not topology:
        return [
            "webstack:topology: missing or not a mapping (is topology.yaml in the pillar roots?)"
        ]
    for extra in sorted(set(topology) - set(TOP_LEVEL_KEYS)):
        errors.append(
            f"{extra}: unknown top-level key (expected one of {', '.join(TOP_LEVEL_KEYS)})"
        )
    master = topology.get("master")
    if master is not None and not (isinstance(master, dict) and ipv4(master.get("address"))):
        errors.append(f"master.address: {master!r} does not hold an IPv4 address")
    nodes = _validate_nodes(topology, errors)
    subnet = nodes_subnet(topology, errors)
    _validate_subnet_membership(subnet, nodes, topology, errors)
    _validate_vip(topology, subnet, nodes, errors)
    _validate_priorities(nodes, errors)
    engine = _validate_db(topology, errors)
    ports = topology.get("ports") or {}
    if not isinstance(ports, dict):
        errors.append("ports: must be a mapping of port name to number")
    else:
        for key, value in ports.items():
            if key not in DEFAULT_PORTS:
                errors.append(
                    f"ports.{key}: unknown port (expected one of {', '.join(DEFAULT_PORTS)})"
                )
            else:
                _check_port(errors, f"ports.{key}", value)
    vrrp = topology.get("vrrp") or {}
    if not isinstance(vrrp, dict) or set(vrrp) - {"profile"}:
        errors.append("vrrp: only 'profile' may be set here (default or fast)")
    elif vrrp.get("profile", "default") not in ("default", "fast"):
        errors.append(f"vrrp.profile: {vrrp['profile']!r} is not a profile (default or fast)")
    lbs = [n for n in nodes if isinstance(n.get("roles"), list) and "lb" in n["roles"]]
    explicit = [n for n in lbs if "priority" in n]
    if len(lbs) > 1 + (PRIORITY_TOP - 1) // PRIORITY_STEP and len(explicit) < len(lbs):
        errors.append(
            f"nodes: {len(lbs)} lb nodes is more than derived priorities allow; "
            "set 'priority' on each"
        )
    _validate_clients(topology, errors)
    _validate_cluster(topology, engine, nodes, errors)
    _validate_secrets(engine, secrets, errors, cluster=is_cluster(engine, nodes))
    _validate_lookup(engine, lookup, errors)
    return errors
