"""
A fake mongod for the unit tests of ``webstack_mongodb`` and of the ``webstack.replset`` and
``webstack.mongodb_user`` states, which run through the real execution-module functions down to
pymongo, stubbed at its boundary: no mongod can run here (MongoDB is not packaged for Debian 12
and its download servers are unreachable from this machine), so ``pymongo.MongoClient`` is
replaced by ``FakeMongod.client``, a small model of mongod's replica-set commands (``hello``,
``replSetGetStatus``/``GetConfig``/``Initiate``/``Reconfig``), of its user commands
(``usersInfo``, ``createUser``, ``updateUser``) and of its authentication: SCRAM logins against
its users and, while no user exists, the localhost exception with exactly the privileges
MongoDB's ``AuthorizationSession::getDefaultPrivileges`` grants. Its errors are pymongo's real
``OperationFailure`` with MongoDB's real error codes.
"""

import types
from unittest import mock

import pymongo.errors

DB_NODES = [
    {"name": "db1", "address": "10.99.5.31", "roles": ["db"]},
    {"name": "db2", "address": "10.99.5.32", "roles": ["db"]},
    {"name": "db3", "address": "10.99.5.33", "roles": ["db"]},
]
MEMBERS = [f"{n['address']}:27017" for n in DB_NODES]
PASSWORD = "admin-Pw-1"
APP_PASSWORD = "app/Pw:@1"
ROOT = [{"role": "root", "db": "admin"}]
READ_WRITE = [{"role": "readWrite", "db": "webstack"}]


def failure(code, message):
    return pymongo.errors.OperationFailure(message, code=code)


#: What MongoDB's localhost exception lets an unauthenticated client on 127.0.0.1 run while no
#: user exists (AuthorizationSession::getDefaultPrivileges): createUser (and grantRole) on admin,
#: replSetConfigure (initiate, reconfig) and replSetGetStatus; not replSetGetConfig nor usersInfo.
LOCALHOST_EXCEPTION = {"replSetInitiate", "replSetReconfig", "replSetGetStatus", "createUser"}
USER_COMMANDS = {"usersInfo", "createUser", "updateUser"}


class FakeMongod:
    """One mongod's replica-set state and users, shared by every client connected to it."""

    def __init__(self, me=MEMBERS[0], primary=True, replication=True):
        self.me = me
        self.primary = primary
        self.replication = replication
        self.config = None  # replSetInitiate makes it
        self.users = {}  # (db, user) -> {"pwd": ..., "roles": [...]}
        self.electing = 0  # hello answers "not PRIMARY yet" this many more times
        self.commands = []  # (command, argument, authenticated)
        self.user_commands = []  # (command, db, user, fields, authenticated)
        self.fail_next = {}  # command -> [OperationFailure, ...] raised once each
        self.refused = []  # commands refused as Unauthorized
        self.clients = []

    @property
    def admin_user(self):
        return ("admin", "admin") in self.users

    @admin_user.setter
    def admin_user(self, present):
        if present:
            self.users["admin", "admin"] = {"pwd": PASSWORD, "roles": ROOT}
        else:
            self.users.pop(("admin", "admin"), None)

    def client(self, host, port, username=None, password=None, **options):
        assert options["directConnection"] is True
        assert options["serverSelectionTimeoutMS"] > 0
        source = options.get("authSource", "admin")
        client = FakeClient(self, host, port, username, password, source)
        self.clients.append(client)
        return client

    def run(self, client, db, name, argument, fields):
        if client.username is not None:
            user = self.users.get((client.auth_source, client.username))
            if user is None or user["pwd"] != client.password:
                raise failure(18, "Authentication failed.")
        elif name != "hello" and (
            self.users
            or name not in LOCALHOST_EXCEPTION
            or (name == "createUser" and db != "admin")
            or client.host != "127.0.0.1"
        ):
            self.refused.append(name)
            raise failure(13, f"command {name} requires authentication")
        authenticated = client.username is not None
        self.commands.append((name, argument, authenticated))
        if self.fail_next.get(name):
            raise self.fail_next[name].pop(0)
        if name in USER_COMMANDS:
            self.user_commands.append((name, db, argument, dict(fields), authenticated))
            return getattr(self, "cmd_" + name)(db, argument, fields)
        return getattr(self, "cmd_" + name)(argument)

    def cmd_ping(self, _):
        return {"ok": 1}

    def cmd_usersInfo(self, db, spec, _):
        key = (spec["db"], spec["user"])
        if key not in self.users:
            return {"users": []}
        user = self.users[key]
        return {
            "users": [{"user": key[1], "db": key[0], "roles": [dict(r) for r in user["roles"]]}]
        }

    def cmd_createUser(self, db, name, fields):
        if (db, name) in self.users:
            raise failure(51003, f'User "{name}@{db}" already exists')
        self.users[db, name] = {"pwd": fields["pwd"], "roles": list(fields["roles"])}
        return {"ok": 1}

    def cmd_updateUser(self, db, name, fields):
        if (db, name) not in self.users:
            raise failure(11, f"User {name}@{db} not found")
        for key in ("pwd", "roles"):
            if key in fields:
                self.users[db, name][key] = fields[key]
        return {"ok": 1}

    def cmd_hello(self, _):
        electing = self.config is not None and self.electing > 0
        if electing:
            self.electing -= 1
        reply = {"isWritablePrimary": self.primary and self.config is not None and not electing}
        if self.config is not None:
            reply.update(setName=self.config["_id"], me=self.me)
            if electing:
                pass
            elif self.primary:
                reply["primary"] = self.me
            else:
                reply["primary"] = next(
                    m["host"] for m in self.config["members"] if m["host"] != self.me
                )
        return reply

    def cmd_replSetGetStatus(self, _):
        if not self.replication:
            raise failure(76, "not running with --replSet")
        if self.config is None:
            raise failure(94, "no replset config has been received")
        return {
            "set": self.config["_id"],
            "members": [
                {
                    "_id": m["_id"],
                    "name": m["host"],
                    "configVersion": self.config["version"],
                    "stateStr": "PRIMARY"
                    if (m["host"] == self.me) == self.primary
                    else "SECONDARY",
                    "health": 1,
                    "self": m["host"] == self.me,
                }
                for m in self.config["members"]
            ],
        }

    def cmd_replSetGetConfig(self, _):
        return {"config": dict(self.config, members=[dict(m) for m in self.config["members"]])}

    def cmd_replSetInitiate(self, config):
        if self.config is not None:
            raise failure(23, "already initialized")
        self.config = dict(config, version=1, members=[dict(m) for m in config["members"]])
        return {"ok": 1}

    def cmd_replSetReconfig(self, config):
        old = self.config
        assert config["version"] == old["version"] + 1
        added = {m["host"] for m in config["members"]} - {m["host"] for m in old["members"]}
        if len(added) > 1 or len(config["members"]) < len(old["members"]):
            raise failure(103, "only one voting member may be added or removed at a time")
        self.config = dict(config, members=[dict(m) for m in config["members"]])
        return {"ok": 1}


class FakeClient:
    def __init__(self, server, host, port, username, password, auth_source):
        self.server, self.host, self.port = server, host, port
        self.username, self.password, self.auth_source = username, password, auth_source
        self.closed = False
        self.admin = self["admin"]

    def __getitem__(self, db):
        def command(name, argument=None, **fields):
            assert not self.closed
            return self.server.run(self, db, name, argument, fields)

        return types.SimpleNamespace(command=command)

    def close(self):
        self.closed = True


def topology_node(engine="mongodb"):
    return {
        "valid": True,
        "name": "db1",
        "roles": ["db"],
        "db": {"engine": engine, "replica_set": "rs0"},
        "ports": {"mongodb": 27017},
        "db_nodes": DB_NODES,
        "mongodb_members": MEMBERS,
    }


def topology_mock():
    """``webstack_topology.node`` answering :func:`topology_node` (its ``engine`` as given)."""
    return mock.MagicMock(side_effect=topology_node)


def pymongo_module(mongod):
    """What ``webstack_mongodb`` sees as ``pymongo``: ``mongod``'s client, pymongo's errors."""
    return types.SimpleNamespace(MongoClient=mongod.client, errors=pymongo.errors)


def initiated(mongod, members=MEMBERS):
    mongod.cmd_replSetInitiate(
        {"_id": "rs0", "members": [{"_id": i, "host": h} for i, h in enumerate(members)]}
    )
