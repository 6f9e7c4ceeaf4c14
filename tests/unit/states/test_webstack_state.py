"""
Unit tests of _states/webstack.py.

``replset`` and ``mongodb_user`` run through the real execution-module functions
(``webstack_mongodb.mongodb_replset``, ``..._initiate``, ``..._add``, ``.mongodb_user``,
``..._create``, ``..._update``, ``mongodb_login``, ``mongodb_wait_primary``) down to pymongo,
which is stubbed at its boundary: no mongod can run here (MongoDB is not packaged for Debian 12
and its download servers are unreachable from this machine), so ``pymongo.MongoClient`` is
replaced by ``FakeMongod`` (tests/support/fake_mongod.py), a small model of mongod's replica-set
commands (``hello``,
``replSetGetStatus``/``GetConfig``/``Initiate``/``Reconfig``), of its user commands
(``usersInfo``, ``createUser``, ``updateUser``) and of its authentication: SCRAM logins against
its users and, while no user exists, the localhost exception with exactly the privileges
MongoDB's ``AuthorizationSession::getDefaultPrivileges`` grants. Its errors are pymongo's real
``OperationFailure`` with MongoDB's real error codes.

``server_state`` is unit-tested on its decisions with the module functions stubbed; the real
haproxy is exercised in tests/functional/states. The execution module's own tests:
tests/unit/modules/test_webstack_mongodb.py.
"""

import types
from unittest import mock

import pymongo.errors
import pytest
from salt.exceptions import CommandExecutionError
from support.clock import fake_clock
from support.fake_mongod import (
    APP_PASSWORD,
    MEMBERS,
    PASSWORD,
    READ_WRITE,
    ROOT,
    FakeMongod,
    failure,
    initiated,
    pymongo_module,
    topology_mock,
    topology_node,
)
from support.salt_modules import UTILS, functions, load

mongodb = load("_modules", "webstack_mongodb")
webstack_state = load("_states", "webstack")


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def pillar():
    return {
        "webstack": {"secrets": {"mongodb_admin_password": PASSWORD, "db_password": APP_PASSWORD}}
    }


@pytest.fixture
def configure_loader_modules(mongod, opts, pillar):
    node = topology_mock()
    fake_pymongo = pymongo_module(mongod)
    module_salt = {"webstack_topology.node": node}
    state_salt = {
        "webstack_topology.node": node,
        "webstack_haproxy.set_server_state": mock.MagicMock(),
        **functions(mongodb),
    }
    return {
        mongodb: {
            "__salt__": module_salt,
            "__pillar__": pillar,
            "__grains__": {"id": "db1"},
            "__utils__": UTILS,
            "pymongo": fake_pymongo,
            "HAS_PYMONGO": True,
        },
        webstack_state: {
            "__salt__": state_salt,
            "__opts__": opts,
            "__pillar__": pillar,
            "__utils__": UTILS,
        },
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
    mongod.admin_user = True
    mongod.fail_next["replSetReconfig"] = [failure(109, "config change in progress")]
    with mock.patch.object(mongodb.time, "sleep"):
        ret = webstack_state.replset("rs0", members=MEMBERS[:2])
    assert ret["result"] is True, ret["comment"]
    assert [m["host"] for m in mongod.config["members"]] == MEMBERS[:2]


def test_a_failed_add_reports_what_was_added(mongod):
    mongod.cmd_replSetInitiate({"_id": "rs0", "members": [{"_id": 0, "host": MEMBERS[0]}]})
    mongod.admin_user = True
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
    mongod.admin_user = True
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
    def refuse(self, client, db, name, argument, fields):
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


# --------------------------------------------------------------------------------------------------
# mongodb_user
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def clock():
    """A fake monotonic clock that time.sleep advances (the waits run instantly)."""
    with fake_clock(mongodb.time, 1000.0) as now:
        yield now


def admin_user(**kwargs):
    args = {"passwd_pillar": "webstack:secrets:mongodb_admin_password", "roles": ROOT}
    return webstack_state.mongodb_user("admin", **dict(args, **kwargs))


def app_user(**kwargs):
    args = {
        "database": "webstack",
        "passwd_pillar": "webstack:secrets:db_password",
        "roles": ["readWrite"],
    }
    return webstack_state.mongodb_user("webstack", **dict(args, **kwargs))


def user_writes(mongod):
    return [(c[0], c[1], c[2]) for c in mongod.user_commands if c[0] != "usersInfo"]


def assert_no_password(*rets):
    for ret in rets:
        assert PASSWORD not in repr(ret) and APP_PASSWORD not in repr(ret), ret


def test_first_run_creates_the_admin_through_the_localhost_exception_then_the_app_user(mongod):
    replset = webstack_state.replset("rs0")
    admin = admin_user()
    app = app_user()
    assert [replset["result"], admin["result"], app["result"]] == [True, True, True], [
        replset["comment"],
        admin["comment"],
        app["comment"],
    ]
    assert admin["changes"] == {
        "user": {"old": None, "new": {"name": "admin", "database": "admin", "roles": ROOT}}
    }
    assert "localhost exception" in admin["comment"]
    assert app["changes"] == {
        "user": {
            "old": None,
            "new": {"name": "webstack", "database": "webstack", "roles": READ_WRITE},
        }
    }
    assert "localhost exception" not in app["comment"]
    # createUser of the admin unauthenticated (the exception), of the app user as that admin.
    assert [(c[0], c[1], c[2], c[4]) for c in mongod.user_commands if c[0] == "createUser"] == [
        ("createUser", "admin", "admin", False),
        ("createUser", "webstack", "webstack", True),
    ]
    assert mongod.users == {
        ("admin", "admin"): {"pwd": PASSWORD, "roles": ROOT},
        ("webstack", "webstack"): {"pwd": APP_PASSWORD, "roles": READ_WRITE},
    }
    assert_no_password(replset, admin, app)
    assert all(client.closed for client in mongod.clients)


def test_second_run_changes_nothing(mongod):
    initiated(mongod)
    mongod.admin_user = True
    mongod.users["webstack", "webstack"] = {"pwd": APP_PASSWORD, "roles": READ_WRITE}
    rets = [webstack_state.replset("rs0"), admin_user(), app_user()]
    assert [(r["result"], r["changes"]) for r in rets] == [(True, {})] * 3
    assert "its password logs in" in rets[2]["comment"]
    assert user_writes(mongod) == []
    assert writes(mongod) == []


def test_a_password_that_no_longer_logs_in_is_reset_alone(mongod):
    initiated(mongod)
    mongod.admin_user = True
    mongod.users["webstack", "webstack"] = {"pwd": "old-Pw", "roles": READ_WRITE}
    ret = app_user()
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {"password": {"old": "refused", "new": "reset"}}
    assert user_writes(mongod) == [("updateUser", "webstack", "webstack")]
    assert mongod.user_commands[-1][3] == {"pwd": APP_PASSWORD}  # roles left alone
    assert mongod.users["webstack", "webstack"]["pwd"] == APP_PASSWORD
    assert_no_password(ret)


def test_different_roles_are_replaced_and_the_password_kept(mongod):
    initiated(mongod)
    mongod.admin_user = True
    old_roles = [{"role": "read", "db": "webstack"}, {"role": "dbAdmin", "db": "other"}]
    mongod.users["webstack", "webstack"] = {"pwd": APP_PASSWORD, "roles": old_roles}
    ret = app_user()
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {
        "roles": {"old": sorted(old_roles, key=lambda r: (r["db"], r["role"])), "new": READ_WRITE}
    }
    assert mongod.user_commands[-1][:4] == (
        "updateUser",
        "webstack",
        "webstack",
        {"roles": READ_WRITE},
    )
    assert mongod.users["webstack", "webstack"] == {"pwd": APP_PASSWORD, "roles": READ_WRITE}


def test_roles_compare_regardless_of_order_and_spelling(mongod):
    initiated(mongod)
    mongod.admin_user = True
    roles = [{"role": "readWrite", "db": "webstack"}, {"role": "read", "db": "reports"}]
    mongod.users["webstack", "webstack"] = {"pwd": APP_PASSWORD, "roles": roles}
    ret = app_user(roles=[{"role": "read", "db": "reports"}, "readWrite"])
    assert (ret["result"], ret["changes"]) == (True, {})


def test_test_mode_reports_the_creation_and_writes_nothing(mongod, opts):
    initiated(mongod)
    opts["test"] = True
    ret = admin_user()
    assert ret["result"] is None
    assert ret["changes"]["user"]["new"] == {"name": "admin", "database": "admin", "roles": ROOT}
    assert "would be created through the localhost exception" in ret["comment"]
    # Before the admin exists, the app user can only be announced.
    app = app_user()
    assert app["result"] is None
    assert "once admin@admin exists" in app["comment"]
    assert user_writes(mongod) == []
    assert mongod.users == {}
    assert_no_password(ret, app)


def test_test_mode_reports_a_password_and_roles_reset(mongod, opts):
    initiated(mongod)
    mongod.admin_user = True
    mongod.users["webstack", "webstack"] = {"pwd": "old-Pw", "roles": []}
    opts["test"] = True
    ret = app_user()
    assert ret["result"] is None
    assert ret["changes"] == {
        "roles": {"old": [], "new": READ_WRITE},
        "password": {"old": "refused", "new": "reset"},
    }
    assert "roles and password would be reset" in ret["comment"]
    assert user_writes(mongod) == []


def test_test_mode_without_a_mongod_says_what_would_happen(opts):
    opts["test"] = True

    def refuse(self, client, db, name, argument, fields):
        raise pymongo.errors.ServerSelectionTimeoutError(
            "127.0.0.1:27017: [Errno 111] Connection refused, "
            "Timeout: 2.0s, Topology Description: <...>"
        )

    with mock.patch.object(FakeMongod, "run", refuse):
        rets = [webstack_state.replset("rs0"), admin_user(), app_user()]
    assert [(r["result"], r["changes"]) for r in rets] == [(None, {})] * 3
    assert "would be initiated with " + ", ".join(MEMBERS) in rets[0]["comment"]
    assert "Connection refused" in rets[1]["comment"]
    assert "Topology Description" not in rets[1]["comment"]


def test_waits_for_the_first_election(mongod, clock):
    initiated(mongod)
    mongod.electing = 3
    ret = admin_user(wait=30)
    assert ret["result"] is True, ret["comment"]
    assert clock[0] == 1003.0
    assert ("admin", "admin") in mongod.users


def test_no_primary_within_the_wait_fails_clearly(mongod, clock):
    initiated(mongod)
    mongod.electing = 1000
    ret = admin_user(wait=5)
    assert ret["result"] is False
    assert ret["comment"] == (
        "mongod at 127.0.0.1:27017 is not the writable PRIMARY after 5s: "
        "it is not PRIMARY (primary: none elected yet)"
    )
    assert mongod.users == {}


def test_an_uninitiated_set_is_not_waited_for_in_vain(mongod, clock):
    ret = admin_user(wait=5)
    assert ret["result"] is False
    assert "its replica set is not initiated" in ret["comment"]


def test_a_secondary_writes_no_user(mongod, clock):
    initiated(mongod)
    mongod.me, mongod.primary = MEMBERS[1], False
    ret = admin_user(wait=2)
    assert ret["result"] is False
    assert f"primary: {MEMBERS[0]}" in ret["comment"]
    assert user_writes(mongod) == []


def test_the_app_user_cannot_be_the_first_user(mongod):
    initiated(mongod)
    ret = app_user()
    assert ret["result"] is False
    assert "no MongoDB user exists yet" in ret["comment"]
    assert "admin@admin" in ret["comment"]
    assert mongod.users == {}


def test_a_wrong_admin_password_in_pillar_fails_clearly(mongod, pillar):
    initiated(mongod)
    mongod.users["admin", "admin"] = {"pwd": "another-Pw", "roles": ROOT}
    ret = app_user()
    assert ret["result"] is False
    assert "refused the login as 'admin'" in ret["comment"]
    assert "no localhost exception" in ret["comment"]
    assert_no_password(ret)


def test_a_missing_password_fails_before_connecting(mongod, pillar):
    del pillar["webstack"]["secrets"]["db_password"]
    ret = app_user()
    assert ret["result"] is False
    assert ret["comment"] == "no password: pillar webstack:secrets:db_password is missing or empty"
    assert mongod.clients == []


def test_an_explicit_password_works_too(mongod):
    initiated(mongod)
    mongod.admin_user = True
    ret = webstack_state.mongodb_user("report", "rep-Pw-1", ["read"], "webstack")
    assert ret["result"] is True, ret["comment"]
    assert mongod.users["webstack", "report"] == {
        "pwd": "rep-Pw-1",
        "roles": [{"role": "read", "db": "webstack"}],
    }
    assert "rep-Pw-1" not in repr(ret)


def test_bad_roles_fail(mongod):
    ret = app_user(roles=[{"db": "webstack"}])
    assert ret["result"] is False
    assert "neither a name nor {role, db}" in ret["comment"]


def test_replset_rerun_under_the_localhost_exception_reads_the_members_from_the_status(mongod):
    # First run: initiated, then the users state failed (no user yet). replSetGetConfig is not
    # allowed by the localhost exception; the members come from replSetGetStatus.
    initiated(mongod)
    ret = webstack_state.replset("rs0")
    assert (ret["result"], ret["changes"]) == (True, {}), ret["comment"]
    assert "replSetGetConfig" in mongod.refused
    view = mongodb.mongodb_replset()
    assert view["config"] == {
        "version": 1,
        "members": [{"_id": i, "host": h} for i, h in enumerate(MEMBERS)],
    }


# --------------------------------------------------------------------------------------------------
# server_state decisions
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def haproxy_view():
    servers = {"app1": {"admin_state": "ready"}, "app2": {"admin_state": "ready"}}
    saved = {"app1": "ready", "app2": "ready"}
    funcs = {
        "webstack_haproxy.haproxy_servers": lambda backend, socket: {backend: servers},
        "webstack_haproxy.saved_server_state": lambda name, backend, state_file: saved.get(name),
    }
    setter = webstack_state.__salt__["webstack_haproxy.set_server_state"]
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


def test_each_state_needs_only_its_own_module():
    """Without haproxy's module (no lb here), the MongoDB states load; server_state says why not."""
    only_mongodb = {k: v for k, v in webstack_state.__salt__.items() if "haproxy" not in k}
    with mock.patch.dict(webstack_state.__salt__, only_mongodb, clear=True):
        assert webstack_state.__virtual__() == "webstack"
        ret = webstack_state.server_state("app1", "drain")
    assert ret["result"] is False
    assert "webstack_haproxy.haproxy_servers" in ret["comment"]
