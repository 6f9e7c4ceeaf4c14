"""
Live state of a webstack node, and the one name (``webstack.*``) the orchestration, the states,
the runner, the lab and the docs call: a thin facade over one execution module per component.

- ``webstack_vip``: who holds the VIP (``vip_owner``), cross-checked with keepalived's VRRP state.
- ``webstack_haproxy``: haproxy's runtime API (servers, admin state, the server-state file).
- ``webstack_app``: the app's ``/healthz`` and ``/readyz`` through nginx and on gunicorn's socket.
- ``webstack_patroni``: PostgreSQL (one node) and the Patroni cluster (3+ db nodes).
- ``webstack_mongodb``: the MongoDB replica set and users (pymongo).

Each loads on its own (its ``__virtual__`` names what it lacks); a facade function whose module
did not load raises an error with that reason. What belongs to no single component lives here:
the per-role summary (``backend_health``, ``services``, ``status``; ``salt-run webstack.status``
gathers it). Paths and names: pillar ``webstack:lookup`` over
``salt/webstack/parameters/defaults.yaml``; the cluster: ``webstack_topology.node``.
"""

import functools
import logging

import salt.utils.path
import salt.utils.platform
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "webstack"

#: The haproxy.cfg template's backend of app nodes (its servers are named after the nodes).
BACKEND = "app"
ROLES = ("lb", "app", "db")


def __virtual__():
    if not salt.utils.platform.is_linux():
        return (False, "webstack: Linux only (the webstack nodes run Debian)")
    if "webstack_config.lookup" not in __utils__:
        return (False, "webstack: the webstack_config utils module is not synced (_utils)")
    return __virtualname__


def _call(name, *args, **kwargs):
    """``__salt__[name](...)``, or an error saying why that component module did not load."""
    if name not in __salt__:
        missing = getattr(__salt__, "missing_fun_string", None)
        reason = missing(name) if missing else f"'{name}' is not available."
        raise CommandExecutionError(f"webstack: {reason}")
    log.debug("webstack: %s", name)
    return __salt__[name](*args, **kwargs)


def _lookup(key):
    return __utils__["webstack_config.lookup"](__pillar__, key)


def _node():
    return __utils__["webstack_config.node"](__salt__)


def _self_name(node):
    return __utils__["webstack_config.self_name"](node, __grains__)


# --------------------------------------------------------------------------------------------------
# The components' functions, under the names every caller knows
# --------------------------------------------------------------------------------------------------


def parse_stat_csv(text):
    """
    haproxy's ``show stat`` parsed by its CSV header (``webstack_haproxy.parse_stat_csv``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_stat_csv "$(cat show-stat.csv)"
    """
    return _call("webstack_haproxy.parse_stat_csv", text)


def parse_servers_state(text):
    """
    haproxy's ``show servers state`` decoded (``webstack_haproxy.parse_servers_state``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_servers_state "$(cat /var/lib/haproxy/server-state)"
    """
    return _call("webstack_haproxy.parse_servers_state", text)


def parse_vrrp_state(text):
    """
    keepalived-notify's record parsed (``webstack_vip.parse_vrrp_state``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_vrrp_state "$(cat /run/webstack/vrrp.json)"
    """
    return _call("webstack_vip.parse_vrrp_state", text)


def parse_ip_addresses(text):
    """
    ``ip -j addr show`` parsed (``webstack_vip.parse_ip_addresses``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_ip_addresses "$(ip -j addr show)"
    """
    return _call("webstack_vip.parse_ip_addresses", text)


def parse_arping(text):
    """
    The MACs in ``arping`` replies (``webstack_vip.parse_arping``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_arping "$(arping -D -c 2 -I eth0 10.77.0.100)"
    """
    return _call("webstack_vip.parse_arping", text)


def vip_owner(vip=None, interface=None, state_file=None, instance=None, netns=None):
    """
    Whether this node holds the VIP, keepalived's recorded VRRP state, and any other host that
    answers ARP for it (``webstack_vip.vip_owner``, which documents the arguments and answer).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.vip_owner
        salt '*' webstack.vip_owner
    """
    return _call("webstack_vip.vip_owner", vip, interface, state_file, instance, netns)


def haproxy_command(command, socket=None, timeout=5.0):
    """
    One command to haproxy's runtime API, its raw answer (``webstack_haproxy.haproxy_command``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.haproxy_command "show info"
    """
    return _call("webstack_haproxy.haproxy_command", command, socket=socket, timeout=timeout)


def haproxy_servers(backend=None, socket=None):
    """
    The servers haproxy knows, per backend (``webstack_haproxy.haproxy_servers``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.haproxy_servers backend=app
    """
    return _call("webstack_haproxy.haproxy_servers", backend=backend, socket=socket)


def request_log(lines=100, request_id=None, socket=None):
    """
    The newest request log lines of this lb, oldest first (``webstack_haproxy.request_log``).

    CLI Example:

    .. code-block:: bash

        salt 'lb*' webstack.request_log lines=20
    """
    return _call("webstack_haproxy.request_log", lines, request_id=request_id, socket=socket)


def save_server_state(socket=None, state_file=None):
    """
    Write haproxy's servers' state to the server-state file
    (``webstack_haproxy.save_server_state``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.save_server_state
    """
    return _call("webstack_haproxy.save_server_state", socket=socket, state_file=state_file)


def saved_server_state(server, backend=BACKEND, state_file=None):
    """
    The admin state the server-state file records for one server
    (``webstack_haproxy.saved_server_state``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.saved_server_state app1
    """
    return _call(
        "webstack_haproxy.saved_server_state", server, backend=backend, state_file=state_file
    )


def set_server_state(server, state, *, backend=BACKEND, socket=None, state_file=None, wait=0):
    """
    Set one haproxy server ``ready``, ``drain`` or ``maint`` and save the server-state file
    (``webstack_haproxy.set_server_state``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.set_server_state app1 drain wait=30
        salt -C 'I@webstack:topology:name:lab' webstack.set_server_state app1 ready
    """
    return _call(
        "webstack_haproxy.set_server_state",
        server,
        state,
        backend=backend,
        socket=socket,
        state_file=state_file,
        wait=wait,
    )


def wait_server(server, backend=BACKEND, timeout=60, interval=0.5, socket=None):
    """
    Wait until haproxy's health checks see one server up (``webstack_haproxy.wait_server``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.wait_server app1 timeout=60
    """
    return _call("webstack_haproxy.wait_server", server, backend, timeout, interval, socket)


def wait_healthy(timeout=120, interval=1, path="/healthz", url=None):
    """
    Wait until this app node answers 200 through nginx (``webstack_app.wait_healthy``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.wait_healthy timeout=60
    """
    return _call("webstack_app.wait_healthy", timeout, interval, path, url)


def _mongodb(func):
    """``webstack.<name>`` -> ``webstack_mongodb.<name>``: the decorated function only carries
    the signature (which Salt's argspec reads through ``__wrapped__``) and the docstring."""

    @functools.wraps(func)
    def call(*args, **kwargs):
        return _call(f"webstack_mongodb.{func.__name__}", *args, **kwargs)

    return call


@_mongodb
def mongodb_replset(host=None, port=None, username=None, password=None):
    """
    The replica set as the local mongod sees it (``webstack_mongodb.mongodb_replset``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_replset
    """


@_mongodb
def mongodb_replset_initiate(name, members, *, host=None, port=None, username=None, password=None):
    """
    Initiate the replica set ``name`` (``webstack_mongodb.mongodb_replset_initiate``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_replset_initiate rs0 '["10.0.0.31:27017", "10.0.0.32:27017"]'
    """


@_mongodb
def mongodb_replset_add(
    member, *, host=None, port=None, username=None, password=None, timeout=60, interval=1
):
    """
    Add one member to the replica set (``webstack_mongodb.mongodb_replset_add``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_replset_add 10.0.0.33:27017
    """


@_mongodb
def mongodb_wait_primary(timeout=60, interval=1, *, host=None, port=None):
    """
    Wait until the local mongod is the writable PRIMARY
    (``webstack_mongodb.mongodb_wait_primary``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_wait_primary timeout=120
    """


@_mongodb
def mongodb_user(name, database="admin", *, host=None, port=None, username=None, password=None):
    """
    One MongoDB user as ``usersInfo`` shows it (``webstack_mongodb.mongodb_user``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_user webstack database=webstack
    """


@_mongodb
def mongodb_user_create(
    name, passwd, roles, database="admin", *, host=None, port=None, username=None, password=None
):
    """
    Create a MongoDB user (``webstack_mongodb.mongodb_user_create``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_user_create webstack "$PW" '["readWrite"]' database=webstack
    """


@_mongodb
def mongodb_user_update(
    name,
    database="admin",
    *,
    passwd=None,
    roles=None,
    host=None,
    port=None,
    username=None,
    password=None,
):
    """
    Change a MongoDB user's password and/or roles (``webstack_mongodb.mongodb_user_update``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_user_update webstack database=webstack roles='["readWrite"]'
    """


@_mongodb
def mongodb_login(name, passwd, database="admin", *, host=None, port=None):
    """
    Whether MongoDB accepts a login (``webstack_mongodb.mongodb_login``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_login webstack "$PW" database=webstack
    """


# --------------------------------------------------------------------------------------------------
# Per-role summary
# --------------------------------------------------------------------------------------------------


def _roles(node, role):
    if role:
        roles = [role] if isinstance(role, str) else list(role)
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise CommandExecutionError(f"role: {unknown[0]!r} is not one of lb, app, db")
        return roles
    return list(node.get("roles") or [])


def _db_health(node, engine=None):
    db = node.get("db") or {}
    engine = engine or db.get("engine")
    if engine == "mongodb":
        try:
            return dict(_call("webstack_mongodb.health"), engine=engine)
        except CommandExecutionError as exc:  # pymongo missing: the module did not load
            return {"healthy": False, "ping": False, "error": str(exc), "engine": engine}
    if engine == "ferretdb" and db.get("cluster"):
        # 3+ db nodes: a Patroni cluster, judged from its members' REST APIs (leader, replicas,
        # lag; unhealthy without a leader or a synchronous standby).
        return dict(_call("webstack_patroni.cluster"), engine=engine, cluster=True)
    if engine == "ferretdb":
        port = (node.get("ports") or {}).get("postgresql", 5432)
        return dict(_call("webstack_patroni.postgresql_health", port=port), engine=engine)
    return {"engine": engine, "healthy": False, "error": f"unknown db engine {engine!r}"}


def _role_health(name, node, overrides):
    if name == "lb":
        return _call("webstack_haproxy.health", socket=overrides["socket"])
    if name == "app":
        return _call(
            "webstack_app.health", url=overrides["url"], app_socket=overrides["app_socket"]
        )
    return _db_health(node, overrides["engine"])


def backend_health(role=None, socket=None, url=None, app_socket=None, engine=None):
    """
    The health of what this node serves, per role (``{"lb": ..., "app": ..., "db": ...}``):

    - lb: every haproxy frontend, backend and server (status, check, admin state, weight,
      sessions) from the runtime API (``webstack_haproxy.health``);
    - app: ``/healthz`` and ``/readyz`` through nginx and directly on gunicorn's socket
      (``webstack_app.health``);
    - db: ``pg_isready``/``psql`` (ferretdb engine, ``webstack_patroni.postgresql_health``), the
      Patroni cluster (3+ db nodes, ``webstack_patroni.cluster``) or ping + replica-set members
      (mongodb, ``webstack_mongodb.health``);
    - ``certificates``: this node's TLS certificates, each with its names and expiry date
      (``webstack_pki.certificates``).

    role
        Check this role (or list of roles) instead of the topology's roles of this minion.
    socket
        haproxy's admin socket (default ``webstack:lookup:lb:haproxy:admin_socket``).
    url
        nginx's base URL (default ``http://<node address>:<ports.app>``).
    app_socket
        gunicorn's unix socket (default ``webstack:lookup:app:socket``).
    engine
        The db engine (default the topology's ``db.engine``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.backend_health
        salt-call webstack.backend_health role=lb socket=/tmp/admin.sock
    """
    node = _node()
    roles = _roles(node, role)
    result = {}
    if not roles:
        result["comment"] = f"{_self_name(node)} has no role in the topology" + (
            f" ({'; '.join(node.get('errors') or [])})" if node.get("errors") else ""
        )
    overrides = {"socket": socket, "url": url, "app_socket": app_socket, "engine": engine}
    for name in roles:
        try:
            result[name] = _role_health(name, node, overrides)
        except CommandExecutionError as exc:
            log.debug("webstack: %s health: %s", name, exc)
            result[name] = {"healthy": False, "error": str(exc)}
    if "webstack_pki.certificates" in __salt__:
        result["certificates"] = __salt__["webstack_pki.certificates"]()
    return result


def _service_names(node, roles):
    db = node.get("db") or {}
    engine = db.get("engine")
    names = []
    if "lb" in roles:
        names += [_lookup("lb:haproxy:service"), _lookup("lb:keepalived:service")]
    if "app" in roles:
        names += [_lookup("app:nginx:service"), _lookup("app:supervisor:service")]
        if engine == "ferretdb":
            names.append(_lookup("ferretdb:service"))
    pillar = __utils__["webstack_config.pillar"]
    if "db" in roles and db.get("cluster"):
        names += [pillar(__pillar__, "webstack:lookup:patroni:service") or "patroni"]
        names += [pillar(__pillar__, "webstack:lookup:etcd:service") or "etcd"]
    elif "db" in roles:
        names.append(_lookup("mongodb:service" if engine == "mongodb" else "postgresql:service"))
    return names


def _service(name):
    entry = {}
    for key, func in (("running", "service.status"), ("enabled", "service.enabled")):
        try:
            entry[key] = bool(__salt__[func](name))
        except Exception as exc:  # reported per service: one must not hide the rest
            log.warning("webstack: %s %s: %s", func, name, exc, exc_info=True)
            entry[key] = None
            entry["error"] = str(exc)
    return entry


def _supervisor_program():
    program = _lookup("app:supervisor:program")
    out = __salt__["cmd.run_all"](
        ["supervisorctl", "status", program], python_shell=False, ignore_retcode=True
    )
    words = out["stdout"].split()
    return f"{program} (supervisor)", {
        "running": len(words) > 1 and words[1] == "RUNNING",
        "enabled": None,
        "status": " ".join(words[1:3]) if len(words) > 1 else out["stderr"].strip(),
    }


def services(role=None):
    """
    Whether the role's services run and are enabled: ``{service: {running, enabled}}``
    (lb: haproxy, keepalived; app: nginx, supervisor and its program, ferretdb; db: the engine,
    or Patroni and etcd in a cluster). A service whose status cannot be read has ``None`` and
    the ``error``.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.services
    """
    node = _node()
    roles = _roles(node, role)
    result = {name: _service(name) for name in _service_names(node, roles)}
    if "app" in roles and salt.utils.path.which("supervisorctl"):
        name, entry = _supervisor_program()
        result[name] = entry
    return result


def status(
    *,
    role=None,
    socket=None,
    url=None,
    app_socket=None,
    engine=None,
    vip=None,
    interface=None,
    state_file=None,
    instance=None,
    netns=None,
):
    """
    This node's whole live state: ``vip`` (``vip_owner``), ``backends``
    (``backend_health``), ``services`` and the topology it believes in. ``salt-run
    webstack.status`` gathers it from every minion.

    The keyword arguments are those of ``backend_health`` (``role``, ``socket``, ``url``,
    ``app_socket``, ``engine``) and ``vip_owner`` (``vip``, ``interface``, ``state_file``,
    ``instance``, ``netns``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.status
    """
    node = _node()
    ret = {
        "node": _self_name(node),
        "roles": _roles(node, role),
        "topology": {
            "valid": node.get("valid", False),
            "errors": node.get("errors") or [],
            "nodes": [n["name"] for n in node.get("nodes") or []],
            "db_nodes": [n["name"] for n in node.get("db_nodes") or []],
            "db_engine": (node.get("db") or {}).get("engine"),
            "vip": (node.get("vip") or {}).get("address"),
        },
        "backends": backend_health(
            role=role, socket=socket, url=url, app_socket=app_socket, engine=engine
        ),
        "services": services(role),
    }
    # Every node answers for the VIP: one that is not an lb but holds it is a problem too.
    try:
        ret["vip"] = vip_owner(
            vip=vip, interface=interface, state_file=state_file, instance=instance, netns=netns
        )
    except CommandExecutionError as exc:
        log.debug("webstack: vip_owner: %s", exc)
        ret["vip"] = {"owner": False, "vrrp_state": "UNKNOWN", "error": str(exc)}
    return ret
