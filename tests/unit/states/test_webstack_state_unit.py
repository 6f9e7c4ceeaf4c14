"""
Unit tests of _states/webstack.py.

``replset`` runs through the real execution-module functions (``webstack.mongodb_replset``,
``..._initiate``, ``..._add``) down to pymongo, which is stubbed at its boundary: no mongod can
run here (MongoDB is not packaged for Debian 12 and its download servers are unreachable from
this machine), so ``pymongo.MongoClient`` is replaced by ``FakeMongod`` below, a small model of
mongod's replica-set commands (``hello``, ``replSetGetStatus``/``GetConfig``/``Initiate``/
``Reconfig``) and of its authentication (localhost exception until the admin user exists). Its
errors are pymongo's real ``OperationFailure`` with MongoDB's real error codes.

``server_state`` is unit-tested on its decisions with the module functions stubbed; the real
haproxy is exercised in tests/functional/states.
"""

import types
from unittest import mock

import pymongo.errors
import pytest
from functional.modules import webstack_harness as harness
from salt.exceptions import CommandExecutionError

webstack_module = harness.load_source("_modules", "webstack_module")
webstack_state = harness.load_source("_states", "webstack_state")

DB_NODES = [
    {"name": "db1", "address": "10.99.5.31", "roles": ["db"]},
    {"name": "db2", "address": "10.99.5.32", "roles": ["db"]},
    {"name": "db3", "address": "10.99.5.33", "roles": ["db"]},
]
MEMBERS = [f"{n['address']}:27017" for n in DB_NODES]
PASSWORD = "admin-Pw-1"


def failure(code, message):
    return pymongo.errors.OperationFailure(message, code=code)


class FakeMongod:
    """One mongod's replica-set state, shared by every client connected to it."""

    def __init__(self, me=MEMBERS[0], primary=True, replication=True):
        self.me = me
        self.primary = primary
        self.replication = replication
        self.config = None  # replSetInitiate makes it
        self.admin_user = False
        self.commands = []  # (command, argument, authenticated)
        self.fail_next = {}  # command -> [OperationFailure, ...] raised once each
        self.clients = []

    def client(self, host, port, username=None, password=None, **options):
        assert options["directConnection"] is True
        assert options["serverSelectionTimeoutMS"] > 0
        client = FakeClient(self, host, port, username, password)
        self.clients.append(client)
        return client

    def run(self, client, name, argument):
        if client.username is not None:
            if not self.admin_user or client.password != PASSWORD:
                raise failure(18, "Authentication failed.")
        elif self.admin_user and name != "hello":
            raise failure(13, f"command {name} requires authentication")
        self.commands.append((name, argument, client.username is not None))
        if self.fail_next.get(name):
            raise self.fail_next[name].pop(0)
        return getattr(self, "cmd_" + name)(argument)

    def cmd_hello(self, _):
        reply = {"isWritablePrimary": self.primary and self.config is not None}
        if self.config is not None:
            reply.update(setName=self.config["_id"], me=self.me)
            if self.primary:
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
                    "name": m["host"],
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
    def __init__(self, server, host, port, username, password):
        self.server, self.host, self.port = server, host, port
        self.username, self.password = username, password
        self.closed = False
        self.admin = types.SimpleNamespace(command=self._command)

    def _command(self, name, argument=None):
        assert not self.closed
        return self.server.run(self, name, argument)

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
    }


@pytest.fixture
def mongod():
    return FakeMongod()


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def configure_loader_modules(mongod, opts):
    node = mock.MagicMock(side_effect=topology_node)
    fake_pymongo = types.SimpleNamespace(MongoClient=mongod.client, errors=pymongo.errors)
    module_salt = {"webstack_topology.node": node}
    state_salt = {
        "webstack_topology.node": node,
        "webstack.mongodb_replset": webstack_module.mongodb_replset,
        "webstack.mongodb_replset_initiate": webstack_module.mongodb_replset_initiate,
        "webstack.mongodb_replset_add": webstack_module.mongodb_replset_add,
        "webstack.set_server_state": mock.MagicMock(),
    }
    return {
        webstack_module: {
            "__salt__": module_salt,
            "__pillar__": {"webstack": {"secrets": {"mongodb_admin_password": PASSWORD}}},
            "__grains__": {"id": "db1"},
            "pymongo": fake_pymongo,
            "HAS_PYMONGO": True,
        },
        webstack_state: {"__salt__": state_salt, "__opts__": opts},
    }


# --------------------------------------------------------------------------------------------------
# replset
# --------------------------------------------------------------------------------------------------


def writes(mongod):
    return [
        (name, arg)
        for name, arg, _ in mongod.commands
        if name in ("replSetInitiate", "replSetReconfig")
    ]


def test_initiates_with_the_topologys_db_nodes_through_the_localhost_exception(mongod):
    ret = webstack_state.replset("rs0")
    assert ret["result"] is True, ret["comment"]
    expected = {"_id": "rs0", "members": [{"_id": i, "host": h} for i, h in enumerate(MEMBERS)]}
    assert ret["changes"] == {"initiated": {"old": None, "new": expected}}
    assert writes(mongod) == [("replSetInitiate", expected)]
    # No admin user yet: the admin login is refused and the command ran unauthenticated.
    assert [auth for name, _, auth in mongod.commands if name == "replSetInitiate"] == [False]
    assert mongod.clients[0].username == "admin"
    assert all(client.closed for client in mongod.clients)


def test_initiate_in_test_mode_reports_and_writes_nothing(mongod, opts):
    opts["test"] = True
    ret = webstack_state.replset("rs0")
    assert ret["result"] is None
    assert [m["host"] for m in ret["changes"]["initiated"]["new"]["members"]] == MEMBERS
    assert "would be initiated" in ret["comment"]
    assert writes(mongod) == []


def test_adds_missing_members_one_reconfig_each(mongod):
    mongod.cmd_replSetInitiate({"_id": "rs0", "members": [{"_id": 0, "host": MEMBERS[0]}]})
    mongod.admin_user = True
    ret = webstack_state.replset("rs0")
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"members": {"old": MEMBERS[:1], "new": MEMBERS}}
    reconfigs = [arg for name, arg in writes(mongod)]
    assert [c["version"] for c in reconfigs] == [2, 3]
    assert [[m["host"] for m in c["members"]] for c in reconfigs] == [MEMBERS[:2], MEMBERS]
    assert [m["_id"] for m in mongod.config["members"]] == [0, 1, 2]
    # The admin user exists now: every command ran authenticated.
    assert all(auth for _, _, auth in mongod.commands)


def test_matching_set_is_a_no_op(mongod):
    mongod.cmd_replSetInitiate(
        {"_id": "rs0", "members": [{"_id": i, "host": h} for i, h in enumerate(MEMBERS)]}
    )
    ret = webstack_state.replset("rs0")
    assert ret["result"] is True
    assert ret["changes"] == {}
    assert "has all 3 members" in ret["comment"]
    assert writes(mongod) == []


def test_adding_in_test_mode_reports_the_intended_members(mongod, opts):
    mongod.cmd_replSetInitiate({"_id": "rs0", "members": [{"_id": 0, "host": MEMBERS[0]}]})
    opts["test"] = True
    ret = webstack_state.replset("rs0")
    assert ret["result"] is None
    assert ret["changes"] == {"members": {"old": MEMBERS[:1], "new": MEMBERS}}
    assert mongod.config["version"] == 1


def test_extra_members_are_reported_not_removed(mongod):
    extra = "10.99.5.99:27017"
    mongod.cmd_replSetInitiate(
        {"_id": "rs0", "members": [{"_id": i, "host": h} for i, h in enumerate([*MEMBERS, extra])]}
    )
    ret = webstack_state.replset("rs0")
    assert ret["result"] is True
    assert extra in ret["comment"]
    assert len(mongod.config["members"]) == 4


def test_retries_while_the_previous_reconfig_is_in_progress(mongod):
    mongod.cmd_replSetInitiate({"_id": "rs0", "members": [{"_id": 0, "host": MEMBERS[0]}]})
    mongod.fail_next["replSetReconfig"] = [failure(109, "config change in progress")]
    with mock.patch.object(webstack_module.time, "sleep"):
        ret = webstack_state.replset("rs0", members=MEMBERS[:2])
    assert ret["result"] is True, ret["comment"]
    assert [m["host"] for m in mongod.config["members"]] == MEMBERS[:2]


def test_a_failed_add_reports_what_was_added(mongod):
    mongod.cmd_replSetInitiate({"_id": "rs0", "members": [{"_id": 0, "host": MEMBERS[0]}]})
    real = mongod.cmd_replSetReconfig
    calls = []

    def second_fails(config):
        calls.append(config)
        if len(calls) == 2:
            raise failure(74, f"{MEMBERS[2]} is unreachable")
        return real(config)

    mongod.cmd_replSetReconfig = second_fails
    ret = webstack_state.replset("rs0")
    assert ret["result"] is False
    assert MEMBERS[2] in ret["comment"] and "unreachable" in ret["comment"]
    assert ret["changes"] == {"members": {"old": MEMBERS[:1], "new": MEMBERS[:2]}}


def test_a_secondary_sends_the_reconfig_to_the_primary(mongod):
    mongod.cmd_replSetInitiate(
        {"_id": "rs0", "members": [{"_id": 0, "host": MEMBERS[0]}, {"_id": 1, "host": MEMBERS[1]}]}
    )
    mongod.me, mongod.primary = MEMBERS[1], False
    ret = webstack_state.replset("rs0")
    assert ret["result"] is True, ret["comment"]
    assert (mongod.clients[-1].host, mongod.clients[-1].port) == ("10.99.5.31", 27017)


def test_wrong_set_name_fails(mongod):
    mongod.cmd_replSetInitiate({"_id": "other", "members": [{"_id": 0, "host": MEMBERS[0]}]})
    ret = webstack_state.replset("rs0")
    assert ret["result"] is False
    assert "'other'" in ret["comment"]


def test_mongod_without_replication_fails_clearly(mongod):
    mongod.replication = False
    ret = webstack_state.replset("rs0")
    assert ret["result"] is False
    assert "replSetName" in ret["comment"]


def test_unreachable_mongod_fails_with_its_address(mongod):
    def refuse(self, client, name, argument):
        raise pymongo.errors.ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")

    with mock.patch.object(FakeMongod, "run", refuse):
        ret = webstack_state.replset("rs0")
    assert ret["result"] is False
    assert "127.0.0.1:27017" in ret["comment"]


def test_other_engines_are_a_no_op(mongod):
    with mock.patch.dict(
        webstack_state.__salt__, {"webstack_topology.node": lambda: topology_node("ferretdb")}
    ):
        ret = webstack_state.replset("rs0")
    assert ret["result"] is True
    assert "ferretdb" in ret["comment"]
    assert mongod.clients == []


def test_db_health_of_the_mongodb_engine(mongod):
    mongod.cmd_replSetInitiate(
        {"_id": "rs0", "members": [{"_id": i, "host": h} for i, h in enumerate(MEMBERS[:2])]}
    )
    db = webstack_module.backend_health(role="db", engine="mongodb")["db"]
    assert db["healthy"] is True
    assert db["replica_set"]["primary"] == MEMBERS[0]
    assert [(m["name"], m["state"]) for m in db["replica_set"]["members"]] == [
        (MEMBERS[0], "PRIMARY"),
        (MEMBERS[1], "SECONDARY"),
    ]


def test_db_health_of_an_uninitiated_set(mongod):
    db = webstack_module.backend_health(role="db", engine="mongodb")["db"]
    assert db["ping"] is True
    assert db["healthy"] is False
    assert db["replica_set"]["initiated"] is False


def test_without_pymongo_the_module_says_so():
    with mock.patch.object(webstack_module, "HAS_PYMONGO", False):
        with pytest.raises(CommandExecutionError, match="pymongo"):
            webstack_module.mongodb_replset()


# --------------------------------------------------------------------------------------------------
# server_state decisions
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def haproxy_view():
    servers = {"app1": {"admin_state": "ready"}, "app2": {"admin_state": "ready"}}
    saved = {"app1": "ready", "app2": "ready"}
    funcs = {
        "webstack.haproxy_servers": lambda backend, socket: {backend: servers},
        "webstack.saved_server_state": lambda name, backend, state_file: saved.get(name),
    }
    setter = webstack_state.__salt__["webstack.set_server_state"]
    setter.side_effect = lambda name, state, **kw: (
        servers[name].update(admin_state=state)
        or {
            "status": state.upper(),
            "sessions": 0,
        }
    )
    with mock.patch.dict(webstack_state.__salt__, funcs):
        yield types.SimpleNamespace(servers=servers, saved=saved, setter=setter)


def test_server_state_changes_then_is_idempotent(haproxy_view):
    ret = webstack_state.server_state("app1", "drain")
    assert ret["result"] is True
    assert ret["changes"] == {
        "state": {"old": "ready", "new": "drain"},
        "server_state_file": {"old": "ready", "new": "drain"},
    }
    haproxy_view.saved["app1"] = "drain"  # what set_server_state wrote
    again = webstack_state.server_state("app1", "drain")
    assert again["result"] is True
    assert again["changes"] == {}
    assert haproxy_view.setter.call_count == 1


def test_server_state_test_mode_changes_nothing(haproxy_view, opts):
    opts["test"] = True
    ret = webstack_state.server_state("app2", "maint")
    assert ret["result"] is None
    assert ret["changes"] == {
        "state": {"old": "ready", "new": "maint"},
        "server_state_file": {"old": "ready", "new": "maint"},
    }
    haproxy_view.setter.assert_not_called()


def test_server_state_rewrites_a_stale_state_file(haproxy_view):
    haproxy_view.saved["app1"] = None
    ret = webstack_state.server_state("app1", "ready")
    assert ret["result"] is True
    assert ret["changes"] == {"server_state_file": {"old": None, "new": "ready"}}
    haproxy_view.setter.assert_called_once()


def test_server_state_unknown_server_fails(haproxy_view):
    ret = webstack_state.server_state("app9", "drain")
    assert ret["result"] is False
    assert "app9" in ret["comment"] and "app1, app2" in ret["comment"]


def test_server_state_bad_state_fails(haproxy_view):
    ret = webstack_state.server_state("app1", "off")
    assert ret["result"] is False
    assert "ready, drain, maint" in ret["comment"]


def test_server_state_reports_the_modules_error(haproxy_view):
    haproxy_view.setter.side_effect = CommandExecutionError("haproxy refused it")
    ret = webstack_state.server_state("app1", "maint")
    assert ret["result"] is False
    assert ret["comment"] == "haproxy refused it"


def test_state_virtual_needs_the_execution_module():
    with mock.patch.dict(webstack_state.__salt__, clear=True):
        loaded, reason = webstack_state.__virtual__()
    assert loaded is False
    assert "execution module" in reason
