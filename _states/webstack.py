"""
States for the live parts of a webstack cluster.

- ``webstack.server_state``: one haproxy server ``ready``, ``drain`` or ``maint`` through the
  runtime API; the server-state file is rewritten so that the state survives a reload.
- ``webstack.replset``: the MongoDB replica set initiated with the topology's db nodes, and any
  missing member added, one reconfiguration at a time.
- ``webstack.mongodb_user``: a MongoDB user with exactly its roles and a password that logs in;
  the first one (the admin) is created through MongoDB's localhost exception.

.. code-block:: yaml

    drain app1:
      webstack.server_state:
        - name: app1
        - admin_state: drain

    replica set:
      webstack.replset:
        - name: rs0

    admin user:
      webstack.mongodb_user:
        - name: admin
        - passwd_pillar: webstack:secrets:mongodb_admin_password
        - roles: [{role: root, db: admin}]
"""

import logging

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "webstack"

#: The execution module each state needs (``server_state``: haproxy's runtime API; ``replset``
#: and ``mongodb_user``: pymongo). One missing fails only its own states, with its reason.
_NEEDS = ("webstack_haproxy.set_server_state", "webstack_mongodb.mongodb_replset")


def __virtual__():
    if not any(name in __salt__ for name in _NEEDS):
        return (
            False,
            "webstack states need the webstack_haproxy or webstack_mongodb execution module "
            "(see their __virtual__)",
        )
    return __virtualname__


def _module(name):
    """``__salt__[name]``, or an error with the reason its execution module did not load."""
    if name not in __salt__:
        missing = getattr(__salt__, "missing_fun_string", None)
        raise CommandExecutionError(missing(name) if missing else f"'{name}' is not available.")
    log.debug("webstack state: %s", name)
    return __salt__[name]


class _Failed(CommandExecutionError):
    """A failed state, with the changes made before the failure."""

    def __init__(self, message, changes=None):
        super().__init__(message)
        self.changes = changes or {}


def _run(name, func, *args, **kwargs):
    """Call ``func`` (-> result, changes, comment) and turn its errors into a failed state."""
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        ret["result"], ret["changes"], ret["comment"] = func(*args, **kwargs)
    except _Failed as exc:
        ret["changes"], ret["comment"] = exc.changes, str(exc)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
    return ret


def server_state(name, admin_state="ready", *, backend="app", socket=None, state_file=None, wait=0):
    """
    Keep one haproxy server in an admin state.

    name
        The server (the app node's name, as in haproxy.cfg).
    admin_state
        ``ready`` (in service), ``drain`` (no new connections, health checks go on) or ``maint``.
        (Not ``state``: that key names the state module in Salt's low data.)
    backend
        Default ``app``.
    socket
        haproxy's admin socket (default ``webstack:lookup:lb:haproxy:admin_socket``).
    state_file
        haproxy's server-state file (default ``webstack:lookup:lb:haproxy:server_state_file``),
        rewritten after a change so that a reload keeps the state.
    wait
        With ``drain``/``maint``: seconds to wait for the server's sessions to end.

    A server already in ``admin_state`` whose state file also records it is left alone (no changes).
    """
    return _run(
        name,
        _server_state,
        name,
        admin_state,
        backend=backend,
        socket=socket,
        state_file=state_file,
        wait=wait,
    )


def _server_state(name, state, *, backend, socket, state_file, wait):
    if state not in ("ready", "drain", "maint"):
        raise CommandExecutionError(f"admin_state: {state!r} is not one of ready, drain, maint")
    servers = _module("webstack_haproxy.haproxy_servers")(backend=backend, socket=socket).get(
        backend, {}
    )
    if name not in servers:
        known = ", ".join(sorted(servers)) or "none"
        raise CommandExecutionError(
            f"haproxy has no server {name!r} in backend {backend!r} (servers: {known})"
        )
    old = servers[name]["admin_state"]
    saved = _module("webstack_haproxy.saved_server_state")(
        name, backend=backend, state_file=state_file
    )
    if old == state and saved == state:
        return True, {}, f"{backend}/{name} is already {state}"
    changes = {}
    if old != state:
        changes["state"] = {"old": old, "new": state}
    if saved != state:
        changes["server_state_file"] = {"old": saved, "new": state}
    if __opts__["test"]:
        what = "would be set to" if old != state else "is already; the state file would record"
        return None, changes, f"{backend}/{name} {what} {state}"
    done = _module("webstack_haproxy.set_server_state")(
        name, state, backend=backend, socket=socket, state_file=state_file, wait=wait
    )
    return (
        True,
        changes,
        f"{backend}/{name} set to {state} ({done['status']}, {done['sessions']} sessions)",
    )


def replset(name, members=None, *, host=None, port=None, username=None, password=None, engine=None):
    """
    The MongoDB replica set ``name`` exists with (at least) ``members``.

    name
        The replica set (the topology's ``db.replica_set``).
    members
        ``["host:port", ...]``; default: the topology's ``mongodb_members`` (its db nodes at
        ``ports.mongodb``).
    host, port, username, password
        Where and how to connect (default 127.0.0.1, ``ports.mongodb``, ``admin`` and pillar
        ``webstack:secrets:mongodb_admin_password``; before the admin user exists, MongoDB's
        localhost exception is used).
    engine
        Default: the topology's ``db.engine``; anything but ``mongodb`` is a no-op.

    Not initiated: ``replSetInitiate`` with every member. Initiated: each missing member is
    added with its own ``replSetReconfig`` (one at a time, on the PRIMARY). Members that are not
    in the list are reported, never removed. With ``test=True`` and no mongod answering yet (not
    installed or not started), says what a real run would do instead of failing.
    """
    conn = {"host": host, "port": port, "username": username, "password": password}
    return _run(name, _replset, name, members, conn, engine)


def _replset(name, members, conn, engine):
    node = __salt__["webstack_topology.node"]()
    engine = engine or (node.get("db") or {}).get("engine")
    if engine != "mongodb":
        return True, {}, f"db engine is {engine!r}, not mongodb: no replica set to manage"
    # Default: the replica set's members as the topology derives them (db nodes, ports.mongodb).
    members = list(members) if members is not None else list(node.get("mongodb_members") or [])
    if not members:
        raise CommandExecutionError("no members: the topology has no db node (webstack:topology)")
    try:
        current = _module("webstack_mongodb.mongodb_replset")(**conn)
    except CommandExecutionError as exc:
        if not __opts__["test"]:
            raise
        # test=True before mongod is installed or started: say what a real run would do.
        comment = (
            f"replica set {name} would be initiated with {', '.join(members)} (or its missing "
            f"members added) once mongod answers: {exc}"
        )
        return None, {}, comment
    if not current["initiated"]:
        return _initiate(name, members, conn)
    if current["name"] != name:
        raise CommandExecutionError(
            f"mongod belongs to replica set {current['name']!r}, not {name!r}"
        )
    existing = [m["host"] for m in current["config"]["members"]]
    missing = [m for m in members if m not in existing]
    extra = [m for m in existing if m not in members]
    note = f" (not in the list, left alone: {', '.join(extra)})" if extra else ""
    if not missing:
        return True, {}, f"replica set {name} has all {len(members)} members{note}"
    if __opts__["test"]:
        changes = {"members": {"old": existing, "new": existing + missing}}
        return None, changes, f"would add {', '.join(missing)} to {name}, one at a time{note}"
    added = _add_members(name, missing, existing, _primary_conn(name, current, conn))
    return (
        True,
        {"members": {"old": existing, "new": existing + added}},
        (f"added {', '.join(added)} to {name}{note}"),
    )


def _primary_conn(name, current, conn):
    """Reconfigurations run on the PRIMARY: connect there when this node is a secondary."""
    if current["is_primary"]:
        return conn
    if not current["primary"]:
        raise CommandExecutionError(f"replica set {name} has no PRIMARY: cannot add members")
    primary_host, _, primary_port = current["primary"].rpartition(":")
    return dict(conn, host=primary_host, port=int(primary_port))


def _add_members(name, missing, existing, conn):
    added = []
    for member in missing:
        try:
            _module("webstack_mongodb.mongodb_replset_add")(member, **conn)
        except CommandExecutionError as exc:
            changes = {"members": {"old": existing, "new": existing + added}} if added else {}
            raise _Failed(f"adding {member} to {name} failed: {exc}", changes) from exc
        added.append(member)
    return added


def _initiate(name, members, conn):
    config = {"_id": name, "members": [{"_id": i, "host": h} for i, h in enumerate(members)]}
    changes = {"initiated": {"old": None, "new": config}}
    if __opts__["test"]:
        return None, changes, f"replica set {name} would be initiated with {', '.join(members)}"
    try:
        _module("webstack_mongodb.mongodb_replset_initiate")(name, members, **conn)
    except CommandExecutionError as exc:
        raise CommandExecutionError(f"replSetInitiate {name} failed: {exc}") from exc
    return True, changes, f"replica set {name} initiated with {', '.join(members)}"


def _role_list(roles, database):
    """Role names (granted on ``database``) or ``{role, db}`` -> sorted ``{role, db}`` documents."""
    docs = {}
    for role in roles or []:
        doc = {"role": role} if isinstance(role, str) else role
        if not isinstance(doc, dict) or not isinstance(doc.get("role"), str):
            raise CommandExecutionError(f"roles: {role!r} is neither a name nor {{role, db}}")
        db = doc.get("db") or database
        docs[(db, doc["role"])] = {"role": doc["role"], "db": db}
    return [docs[key] for key in sorted(docs)]


def _show_roles(roles):
    return ", ".join(f"{r['role']}@{r['db']}" for r in roles) or "no role"


def mongodb_user(
    name,
    passwd=None,
    roles=None,
    database="admin",
    *,
    passwd_pillar=None,
    host=None,
    port=None,
    username=None,
    password=None,
    wait=60,
):
    """
    The MongoDB user ``name`` of ``database`` exists with exactly ``roles`` and logs in with
    its password.

    name
        The user.
    passwd, passwd_pillar
        Its password, or the pillar key that holds it (keeps it out of the rendered SLS and the
        low data). Never shown in the state's output.
    roles
        Role names (granted on ``database``) or ``{role, db}`` documents; replaced as a whole
        when they differ (``updateUser``).
    database
        The user's authentication database (default ``admin``).
    host, port, username, password
        Where and how to connect (see ``webstack.replset``). Before any user exists, the first
        one is created through MongoDB's localhost exception: it must be ``username`` in
        ``admin``, the user every later login uses.
    wait
        Seconds to wait for the local mongod to become the writable PRIMARY (users are written
        on the PRIMARY; the first election takes a few seconds after ``replSetInitiate``).

    A missing user is created. An existing one is left alone when its roles match and a login
    with the password succeeds; otherwise its roles and/or its password are reset. With
    ``test=True``, reports what would change (nothing is written).

    .. code-block:: yaml

        app user:
          webstack.mongodb_user:
            - name: webstack
            - database: webstack
            - passwd_pillar: webstack:secrets:db_password
            - roles: [readWrite]
    """
    conn = {"host": host, "port": port, "username": username, "password": password}
    return _run(
        name, _mongodb_user, name, passwd, passwd_pillar, roles, database, conn=conn, wait=wait
    )


def _user_password(passwd, passwd_pillar):
    if passwd is None and passwd_pillar:
        passwd = __utils__["webstack_config.pillar"](__pillar__, passwd_pillar)
        where = f"pillar {passwd_pillar}"
    else:
        where = "passwd"
    if not isinstance(passwd, str) or not passwd:
        raise CommandExecutionError(f"no password: {where} is missing or empty")
    return passwd


def _mongodb_user(name, passwd, passwd_pillar, roles, database, *, conn, wait):
    passwd = _user_password(passwd, passwd_pillar)
    roles = _role_list(roles, database)
    who = f"{name}@{database}"
    test = __opts__["test"]
    try:
        _module("webstack_mongodb.mongodb_wait_primary")(
            timeout=0 if test else wait, host=conn["host"], port=conn["port"]
        )
    except CommandExecutionError as exc:
        if not test:
            raise
        return None, {}, f"user {who} ({_show_roles(roles)}) would be ensured on the PRIMARY: {exc}"
    current = _module("webstack_mongodb.mongodb_user")(name, database, **conn)
    if not current["exists"]:
        return _create_user(name, passwd, roles, database, current=current, conn=conn)
    changes = {}
    if current["roles"] != roles:
        changes["roles"] = {"old": current["roles"], "new": roles}
    login = _module("webstack_mongodb.mongodb_login")(
        name, passwd, database, host=conn["host"], port=conn["port"]
    )
    if not login:
        changes["password"] = {"old": "refused", "new": "reset"}
    what = " and ".join(k for k in ("roles", "password") if k in changes)
    if not changes:
        return True, {}, f"user {who} exists with {_show_roles(roles)}; its password logs in"
    if test:
        return None, changes, f"user {who}: {what} would be reset"
    _module("webstack_mongodb.mongodb_user_update")(
        name,
        database,
        passwd=passwd if "password" in changes else None,
        roles=roles if "roles" in changes else None,
        **conn,
    )
    return True, changes, f"user {who}: {what} reset"


def _create_user(name, passwd, roles, database, *, current, conn):
    who = f"{name}@{database}"
    login = conn["username"] or "admin"
    changes = {"user": {"old": None, "new": {"name": name, "database": database, "roles": roles}}}
    if current.get("bootstrap") and (name, database) != (login, "admin"):
        # The localhost exception lets exactly one user in: the one every later login uses.
        if __opts__["test"]:
            return None, changes, f"user {who} would be created once {login}@admin exists"
        raise CommandExecutionError(
            f"no MongoDB user exists yet, and {who} is not the one the states log in as "
            f"({login}@admin): create that one first (the localhost exception allows one user)"
        )
    how = " through the localhost exception" if current.get("bootstrap") else ""
    if __opts__["test"]:
        return None, changes, f"user {who} would be created{how} with {_show_roles(roles)}"
    _module("webstack_mongodb.mongodb_user_create")(name, passwd, roles, database, **conn)
    return True, changes, f"user {who} created{how} with {_show_roles(roles)}"
