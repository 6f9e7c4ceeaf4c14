"""
MongoDB administration for the db role of engine ``mongodb``, through pymongo: the replica set
(``mongodb_replset``, ``_initiate``, ``_add``, ``mongodb_wait_primary``) and the users
(``mongodb_user``, ``_create``, ``_update``, ``mongodb_login``), which the ``webstack.replset``
and ``webstack.mongodb_user`` states use; ``health`` for ``webstack.backend_health``.

Logs in as ``admin`` with pillar ``webstack:secrets:mongodb_admin_password``; before that user
exists, through MongoDB's localhost exception (connect through 127.0.0.1). The port defaults to
the topology's ``ports.mongodb``. Loads only where pymongo is importable (python3-pymongo).
"""

import logging
import time

from salt.exceptions import CommandExecutionError

try:
    import pymongo
    import pymongo.errors

    HAS_PYMONGO = True
except ImportError:  # only db nodes of the mongodb engine need it
    HAS_PYMONGO = False

log = logging.getLogger(__name__)

__virtualname__ = "webstack_mongodb"

_MONGO_NOT_INITIATED = 94  # NotYetInitialized
_MONGO_NO_REPLICATION = 76  # NoReplicationEnabled
_MONGO_AUTH_FAILED = 18  # AuthenticationFailed
_MONGO_UNAUTHORIZED = 13  # Unauthorized
# Worth retrying a replSetReconfig: ConfigurationInProgress, CurrentConfigNotCommittedYet,
# NotWritablePrimary, InterruptedDueToReplStateChange, PrimarySteppedDown.
_MONGO_RECONFIG_RETRY = (109, 308, 10107, 11602, 189)
#: Why the module does not load without pymongo (also raised when called regardless).
NO_PYMONGO = "pymongo is not importable by the minion's Python (install python3-pymongo)"


def __virtual__():
    if not HAS_PYMONGO:
        return (False, f"webstack_mongodb: {NO_PYMONGO}")
    return __virtualname__


def _mongo_client(
    host, port, username=None, password=None, *, timeout_ms=2000, auth_source="admin"
):
    kwargs = {
        "host": host,
        "port": int(port),
        "directConnection": True,
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
    }
    if username and password:
        kwargs.update(username=username, password=password, authSource=auth_source)
    return pymongo.MongoClient(**kwargs)


def _mongo_defaults(host, port, username, password):
    if not HAS_PYMONGO:
        raise CommandExecutionError(NO_PYMONGO)
    node = __utils__["webstack_config.node"](__salt__)
    port = port or (node.get("ports") or {}).get("mongodb", 27017)
    if password is None:
        password = __utils__["webstack_config.pillar"](
            __pillar__, "webstack:secrets:mongodb_admin_password"
        )
    return host or "127.0.0.1", int(port), username or "admin", password


def _mongo(func, host=None, port=None, username=None, password=None):
    """Run ``func(client)``; without an admin user yet, fall back to the localhost exception."""
    client = _mongo_client(host, port, username, password)
    try:
        return func(client)
    except pymongo.errors.OperationFailure as exc:
        if exc.code != _MONGO_AUTH_FAILED or not password:
            raise
        log.debug(
            "webstack: admin login refused on %s:%s, trying the localhost exception", host, port
        )
    finally:
        client.close()
    client = _mongo_client(host, port)
    try:
        return func(client)
    finally:
        client.close()


def _replset_view(client):
    admin = client.admin
    hello = admin.command("hello")
    view = {
        "initiated": False,
        "name": None,
        "me": hello.get("me"),
        "is_primary": bool(hello.get("isWritablePrimary")),
        "primary": hello.get("primary"),
        "members": [],
        "config": None,
    }
    try:
        status = admin.command("replSetGetStatus")
    except pymongo.errors.OperationFailure as exc:
        if exc.code == _MONGO_NOT_INITIATED:
            return view
        if exc.code == _MONGO_NO_REPLICATION:
            raise CommandExecutionError(
                "mongod runs without replication: set replication.replSetName in mongod.conf"
            ) from exc
        raise
    config = _replset_config(admin, status)
    view.update(
        initiated=True,
        name=status.get("set"),
        members=[
            {
                "name": m.get("name"),
                "state": m.get("stateStr"),
                "health": m.get("health"),
                "self": bool(m.get("self")),
            }
            for m in status.get("members", [])
        ],
        config={
            "version": config.get("version"),
            "members": [{"_id": m["_id"], "host": m["host"]} for m in config.get("members", [])],
        },
    )
    primaries = [m["name"] for m in view["members"] if m["state"] == "PRIMARY"]
    view["primary"] = view["primary"] or (primaries[0] if primaries else None)
    return view


def _replset_config(admin, status):
    """replSetGetConfig; under the localhost exception (no user yet), which allows
    replSetGetStatus but not replSetGetConfig, the members as the status lists them."""
    try:
        return admin.command("replSetGetConfig")["config"]
    except pymongo.errors.OperationFailure as exc:
        if exc.code != _MONGO_UNAUTHORIZED:
            raise
    members = status.get("members", [])
    versions = [m.get("configVersion") for m in members if m.get("self")]
    return {
        "version": versions[0] if versions else None,
        "members": [{"_id": m["_id"], "host": m["name"]} for m in members],
    }


def _mongo_error(exc):
    """pymongo's message without the topology description it appends to a selection timeout."""
    return str(exc).split(", Timeout: ", 1)[0]


def _mongo_call(func, host, port, username, password):
    host, port, username, password = _mongo_defaults(host, port, username, password)
    log.debug("webstack_mongodb: %s on %s:%s as %s", func.__name__, host, port, username)
    try:
        return _mongo(func, host, port, username, password)
    except CommandExecutionError:
        raise
    except pymongo.errors.PyMongoError as exc:
        raise CommandExecutionError(f"MongoDB at {host}:{port}: {_mongo_error(exc)}") from exc


def mongodb_replset(host=None, port=None, username=None, password=None):
    """
    The replica set as the local mongod sees it: ``{initiated, name, me, is_primary, primary,
    members: [{name, state, health, self}], config: {version, members: [{_id, host}]}}``.

    Logs in as ``admin`` with pillar ``webstack:secrets:mongodb_admin_password``; before that user
    exists, uses MongoDB's localhost exception (connect through 127.0.0.1).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_mongodb.mongodb_replset
    """
    return _mongo_call(_replset_view, host, port, username, password)


def mongodb_replset_initiate(name, members, *, host=None, port=None, username=None, password=None):
    """
    Initiate the replica set ``name`` with ``members`` (``["host:port", ...]``, in order).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_mongodb.mongodb_replset_initiate rs0 '["10.0.0.31:27017"]'
    """
    config = {"_id": name, "members": [{"_id": i, "host": h} for i, h in enumerate(members)]}

    def initiate(client):
        client.admin.command("replSetInitiate", config)
        return config

    return _mongo_call(initiate, host, port, username, password)


def mongodb_replset_add(
    member, *, host=None, port=None, username=None, password=None, timeout=60, interval=1
):
    """
    Add one member (``host:port``) to the replica set with one ``replSetReconfig`` (MongoDB
    accepts one voting member more per reconfiguration); retries while the previous
    reconfiguration is still being committed. Run it against the PRIMARY.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_mongodb.mongodb_replset_add 10.0.0.33:27017
    """

    def add(client):
        deadline = time.monotonic() + float(timeout)
        while True:
            config = client.admin.command("replSetGetConfig")["config"]
            hosts = [m["host"] for m in config["members"]]
            if member in hosts:
                return {"version": config["version"], "members": hosts}
            new = dict(config)
            new["version"] = config["version"] + 1
            next_id = max((m["_id"] for m in config["members"]), default=-1) + 1
            new["members"] = [*config["members"], {"_id": next_id, "host": member}]
            try:
                client.admin.command("replSetReconfig", new)
                return {"version": new["version"], "members": [*hosts, member]}
            except pymongo.errors.OperationFailure as exc:
                if exc.code not in _MONGO_RECONFIG_RETRY or time.monotonic() >= deadline:
                    raise
                log.info("webstack: reconfig adding %s refused (%s), retrying", member, exc)
                time.sleep(float(interval))

    return _mongo_call(add, host, port, username, password)


def _hello(host, port):
    client = _mongo_client(host, port)
    try:
        return client.admin.command("hello")
    finally:
        client.close()


def mongodb_wait_primary(timeout=60, interval=1, *, host=None, port=None):
    """
    Wait until the mongod at ``host:port`` is its replica set's writable PRIMARY (``hello``'s
    ``isWritablePrimary``), as after ``replSetInitiate`` while the first election runs. Returns
    ``{me, primary, set, waited}``; raises an error naming what mongod last said once
    ``timeout`` seconds have passed (``timeout=0``: look once, do not wait).

    ``hello`` needs no login: this works before any user exists.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_mongodb.mongodb_wait_primary
        salt-call webstack_mongodb.mongodb_wait_primary timeout=120
    """
    host, port, _, _ = _mongo_defaults(host, port, None, None)
    start = time.monotonic()
    for _waited in __utils__["webstack_poll.until"](timeout, interval):
        try:
            hello = _hello(host, port)
        except pymongo.errors.PyMongoError as exc:
            last = f"no answer ({_mongo_error(exc)})"
            continue
        if hello.get("isWritablePrimary"):
            return {
                "me": hello.get("me"),
                "primary": hello.get("primary"),
                "set": hello.get("setName"),
                "waited": round(time.monotonic() - start, 1),
            }
        if hello.get("setName"):
            last = f"it is not PRIMARY (primary: {hello.get('primary') or 'none elected yet'})"
        else:
            last = "its replica set is not initiated"
        log.debug("webstack_mongodb: %s:%s: %s", host, port, last)
    after = f" after {timeout}s" if float(timeout) > 0 else ""
    raise CommandExecutionError(
        f"mongod at {host}:{port} is not the writable PRIMARY{after}: {last}"
    )


def _localhost_exception(client):
    """Whether MongoDB's localhost exception is open (no user exists yet) for ``client``.

    The exception grants an unauthenticated localhost client replSetGetStatus (and createUser on
    ``admin``), nothing else: replSetGetStatus answering (or saying the set is not initiated)
    means it is open; Unauthorized, or anything else (a server without it), means closed.
    """
    try:
        client.admin.command("replSetGetStatus")
    except pymongo.errors.OperationFailure as exc:
        return exc.code in (_MONGO_NOT_INITIATED, _MONGO_NO_REPLICATION)
    return True


def _mongo_users(func, host, port, username, password):
    """Run ``func(client, bootstrap)`` logged in as ``username`` (``bootstrap`` False) or, when
    that login is refused and no user exists yet, through the localhost exception (True)."""
    host, port, username, password = _mongo_defaults(host, port, username, password)
    log.debug("webstack_mongodb: %s on %s:%s as %s", func.__name__, host, port, username)
    try:
        if password:
            client = _mongo_client(host, port, username, password)
            try:
                return func(client, False)
            except pymongo.errors.OperationFailure as exc:
                if exc.code != _MONGO_AUTH_FAILED:
                    raise
            finally:
                client.close()
        client = _mongo_client(host, port)
        try:
            if not _localhost_exception(client):
                login = "refused the login as" if password else "got no password for"
                raise CommandExecutionError(
                    f"MongoDB at {host}:{port} {login} {username!r} and users exist already "
                    "(no localhost exception): check pillar webstack:secrets:mongodb_admin_password"
                )
            return func(client, True)
        finally:
            client.close()
    except pymongo.errors.PyMongoError as exc:
        raise CommandExecutionError(f"MongoDB at {host}:{port}: {_mongo_error(exc)}") from exc


def _role_docs(roles, database):
    """``["readWrite", {"role": "root", "db": "admin"}]`` -> role documents, ``database`` by
    default, sorted by (db, role)."""
    docs = []
    for role in roles or []:
        if isinstance(role, str):
            docs.append({"role": role, "db": database})
        elif isinstance(role, dict) and isinstance(role.get("role"), str):
            docs.append({"role": role["role"], "db": role.get("db") or database})
        else:
            raise CommandExecutionError(f"roles: {role!r} is neither a name nor {{role, db}}")
    return sorted(
        {(d["db"], d["role"]): d for d in docs}.values(), key=lambda d: (d["db"], d["role"])
    )


def mongodb_user(name, database="admin", *, host=None, port=None, username=None, password=None):
    """
    One MongoDB user as ``usersInfo`` shows it: ``{name, database, exists, roles: [{role, db}],
    bootstrap}``.

    Logs in as ``username`` (default ``admin``) with ``password`` (default pillar
    ``webstack:secrets:mongodb_admin_password``). Before any user exists that login is refused;
    MongoDB's localhost exception then allows creating the first user but not ``usersInfo``:
    the answer is ``exists: False`` with ``bootstrap: True`` (no user exists at all). When the
    login is refused although users exist, raises an error.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_mongodb.mongodb_user admin
        salt-call webstack_mongodb.mongodb_user webstack database=webstack
    """

    def info(client, bootstrap):
        view = {"name": name, "database": database, "exists": False, "roles": []}
        view["bootstrap"] = bootstrap
        if bootstrap:
            return view
        reply = client[database].command("usersInfo", {"user": name, "db": database})
        for user in reply.get("users") or []:
            if user.get("user") == name and user.get("db", database) == database:
                view.update(exists=True, roles=_role_docs(user.get("roles"), database))
        return view

    return _mongo_users(info, host, port, username, password)


def mongodb_user_create(
    name, passwd, roles, database="admin", *, host=None, port=None, username=None, password=None
):
    """
    Create the MongoDB user ``name`` in ``database`` with the password ``passwd`` and ``roles``
    (role names, granted on ``database``, or ``{role, db}`` documents) with ``createUser``.

    Logs in as ``username``/``password`` (see ``mongodb_user``); before any user exists, through
    MongoDB's localhost exception, which allows exactly one thing: creating the first user in
    ``admin`` (so that one must be the user the later logins use). Returns ``{name, database,
    roles}``; the password is never returned nor logged.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_mongodb.mongodb_user_create admin "$PW" '[{role: root, db: admin}]'
        salt-call webstack_mongodb.mongodb_user_create app "$PW" '[readWrite]' database=webstack
    """
    docs = _role_docs(roles, database)

    def create(client, _bootstrap):
        client[database].command("createUser", name, pwd=passwd, roles=docs)
        return {"name": name, "database": database, "roles": docs}

    return _mongo_users(create, host, port, username, password)


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
    Change the password (``passwd``) and/or replace the roles (``roles``, as for
    ``mongodb_user_create``) of the existing MongoDB user ``name`` with ``updateUser``. Returns
    what was changed (``password``: True, ``roles``: the new roles); never the password.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_mongodb.mongodb_user_update webstack database=webstack roles=[readWrite]
    """
    fields = {}
    if passwd is not None:
        fields["pwd"] = passwd
    if roles is not None:
        fields["roles"] = _role_docs(roles, database)
    if not fields:
        raise CommandExecutionError("nothing to update: pass passwd and/or roles")

    def update(client, bootstrap):
        if bootstrap:
            raise CommandExecutionError(f"no user exists yet: {name}@{database} cannot be updated")
        client[database].command("updateUser", name, **fields)
        return {
            "name": name,
            "database": database,
            "password": "pwd" in fields,
            "roles": fields.get("roles"),
        }

    return _mongo_users(update, host, port, username, password)


def mongodb_login(name, passwd, database="admin", *, host=None, port=None):
    """
    Whether MongoDB accepts the login of user ``name`` (of ``database``) with ``passwd``: True,
    or False when it answers AuthenticationFailed (wrong password or no such user). Any other
    failure (mongod unreachable...) raises an error.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_mongodb.mongodb_login webstack "$PW" database=webstack
    """
    host, port, _, _ = _mongo_defaults(host, port, None, None)
    client = _mongo_client(host, port, name, passwd, auth_source=database)
    try:
        client[database].command("ping")
        return True
    except pymongo.errors.OperationFailure as exc:
        if exc.code == _MONGO_AUTH_FAILED:
            return False
        raise CommandExecutionError(f"MongoDB at {host}:{port}: {_mongo_error(exc)}") from exc
    except pymongo.errors.PyMongoError as exc:
        raise CommandExecutionError(f"MongoDB at {host}:{port}: {_mongo_error(exc)}") from exc
    finally:
        client.close()


def health():
    """
    The local mongod for ``webstack.backend_health``: ``{ping, replica_set, healthy}`` (healthy:
    the set is initiated and has a PRIMARY), or ``{healthy: False, ping: False, error}``.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_mongodb.health
    """
    try:
        view = mongodb_replset()
    except CommandExecutionError as exc:
        log.debug("webstack_mongodb: health: %s", exc)
        return {"healthy": False, "ping": False, "error": str(exc)}
    return {
        "ping": True,
        "replica_set": view,
        "healthy": view["initiated"] and view["primary"] is not None,
    }
