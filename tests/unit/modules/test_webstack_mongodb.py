"""
Unit tests of _modules/webstack_mongodb.py down to pymongo, stubbed at its boundary by the fake
mongod of tests/support/fake_mongod.py (the states that use these functions:
tests/unit/states/test_webstack_state.py).
"""

from unittest import mock

import pymongo.errors
import pytest
from salt.exceptions import CommandExecutionError
from support.fake_mongod import (
    APP_PASSWORD,
    MEMBERS,
    PASSWORD,
    READ_WRITE,
    failure,
    pymongo_module,
    topology_mock,
)
from support.salt_modules import UTILS, functions, load

mongodb = load("_modules", "webstack_mongodb")
webstack = load("_modules", "webstack")


@pytest.fixture
def configure_loader_modules(mongod):
    node = topology_mock()
    fake_pymongo = pymongo_module(mongod)
    pillar = {"webstack": {"secrets": {"mongodb_admin_password": PASSWORD}}}
    salt = {"webstack_topology.node": node, **functions(mongodb)}
    common = {"__salt__": salt, "__pillar__": pillar, "__grains__": {"id": "db1"}}
    common["__utils__"] = UTILS
    return {
        mongodb: dict(common, pymongo=fake_pymongo, HAS_PYMONGO=True),
        webstack: common,
    }


def test_db_health_of_the_mongodb_engine(mongod):
    mongod.cmd_replSetInitiate(
        {"_id": "rs0", "members": [{"_id": i, "host": h} for i, h in enumerate(MEMBERS[:2])]}
    )
    db = webstack.backend_health(role="db", engine="mongodb")["db"]
    assert db["healthy"] is True
    assert db["replica_set"]["primary"] == MEMBERS[0]
    assert [(m["name"], m["state"]) for m in db["replica_set"]["members"]] == [
        (MEMBERS[0], "PRIMARY"),
        (MEMBERS[1], "SECONDARY"),
    ]


def test_db_health_of_an_uninitiated_set(mongod):
    db = webstack.backend_health(role="db", engine="mongodb")["db"]
    assert db["ping"] is True
    assert db["healthy"] is False
    assert db["replica_set"]["initiated"] is False


def test_without_pymongo_the_module_says_so():
    with mock.patch.object(mongodb, "HAS_PYMONGO", False):
        with pytest.raises(CommandExecutionError, match="pymongo"):
            mongodb.mongodb_replset()


def test_mongodb_login_tells_a_refused_login_from_an_error(mongod):
    mongod.users["webstack", "webstack"] = {"pwd": APP_PASSWORD, "roles": READ_WRITE}
    login = mongodb.mongodb_login
    assert login("webstack", APP_PASSWORD, "webstack") is True
    assert login("webstack", "wrong", "webstack") is False
    assert login("nobody", APP_PASSWORD, "webstack") is False
    assert [c.auth_source for c in mongod.clients] == ["webstack"] * 3
    mongod.fail_next["ping"] = [failure(91, "shutdown in progress")]
    with pytest.raises(CommandExecutionError, match="shutdown in progress"):
        login("webstack", APP_PASSWORD, "webstack")


def test_user_update_needs_something_to_update():
    with pytest.raises(CommandExecutionError, match="nothing to update"):
        mongodb.mongodb_user_update("webstack", "webstack")


def test_health_of_the_local_mongod(mongod):
    assert mongodb.health()["replica_set"]["initiated"] is False
    mongod.fail_next["hello"] = [pymongo.errors.ServerSelectionTimeoutError("no mongod")]
    down = mongodb.health()
    assert down == {
        "healthy": False,
        "ping": False,
        "error": "MongoDB at 127.0.0.1:27017: no mongod",
    }


def test_virtual_needs_pymongo():
    assert mongodb.__virtual__() == "webstack_mongodb"
    with mock.patch.object(mongodb, "HAS_PYMONGO", False):
        loaded, reason = mongodb.__virtual__()
    assert loaded is False and "python3-pymongo" in reason
