"""
The MongoDB user functions of the webstack module and the ``webstack.mongodb_user`` state through
Salt's real loader, against a real MongoDB-wire server: FerretDB v1.24 on SQLite, the only one this
machine has (no mongod can be had here, see the unit tests).

What FerretDB v1.24 does and does not do, measured with the binary ``scripts/ensure-ferretdb``
builds, limits what this can cover:

- by default it has no user commands at all: ``usersInfo``/``createUser`` answer
  ``no such command: 'usersInfo'`` (code 59, CommandNotFound). They exist only with
  ``--test-enable-new-auth`` (experimental), as used here;
- even then ``createUser``/``updateUser`` refuse any role: ``createUser: support for field "roles"
  with non-default value ... is not implemented yet`` (code 238, NotImplemented), so users are made
  with ``roles: []`` here; role handling is covered by the unit tests;
- it has no localhost exception: before any user exists every command but the handshake answers
  ``Command usersInfo requires authentication`` (code 13); the first user comes from
  ``--setup-username``/``--setup-password``. The bootstrap through MongoDB's localhost exception
  is covered by the unit tests.

What is real here: the commands' shapes as pymongo sends them (usersInfo, createUser, updateUser
with ``pwd``), SCRAM logins with the users' passwords, and the state's decisions over them.
"""

import os
import socket
import subprocess
import time

import pymongo
import pytest
from functional.modules import webstack_harness as harness
from salt.exceptions import CommandExecutionError
from support.state_tree import SECRETS, ferretdb_binary, make_topology

ADMIN_PASSWORD = SECRETS["mongodb_admin_password"]  # what the loaders' pillar holds
APP_PASSWORD = "app-Pw-1/@:"


@pytest.fixture(scope="module")
def loaders(tmp_path_factory):
    """db1 of a mongodb topology: a node whose pillar holds the admin's password (its share)."""
    base = tmp_path_factory.mktemp("mongodb-loaders")
    site = harness.write_site(base / "site", make_topology(lbs=1, apps=1, dbs=1, engine="mongodb"))
    loaders = harness.make_loaders(base, "db1", site)
    yield loaders
    loaders.reset_state()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ferretdb(tmp_path):
    """FerretDB on SQLite with its experimental user commands and an ``admin`` user."""
    port = free_port()
    log = tmp_path / "ferretdb.log"
    command = [
        ferretdb_binary(),
        "--handler=sqlite",
        f"--sqlite-url=file:{tmp_path}/",
        f"--listen-addr=127.0.0.1:{port}",
        f"--state-dir={tmp_path}",
        "--telemetry=disable",
        "--debug-addr=-",
        "--log-level=warn",
        "--test-enable-new-auth",
        "--setup-database=admin",
        "--setup-username=admin",
        f"--setup-password={ADMIN_PASSWORD}",
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FERRETDB_")}
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environ)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with pymongo.MongoClient(
                    "127.0.0.1",
                    port,
                    username="admin",
                    password=ADMIN_PASSWORD,
                    serverSelectionTimeoutMS=200,
                ) as client:
                    client.admin.command("ping")
                break
            except pymongo.errors.PyMongoError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"FerretDB did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def user_state(loaders, port, passwd=APP_PASSWORD, **kwargs):
    return loaders.states.webstack.mongodb_user(
        name="webstack",
        passwd=passwd,
        roles=[],
        database="webstack",
        host="127.0.0.1",
        port=port,
        wait=5,
        **kwargs,
    )


def test_user_functions_against_ferretdb(loaders, ferretdb):
    mod = loaders.modules.webstack
    conn = {"host": "127.0.0.1", "port": ferretdb}
    assert mod.mongodb_wait_primary(timeout=0, **conn)["waited"] == 0
    # Logged in as admin with the pillar's password (the module's default).
    assert mod.mongodb_user("admin", **conn) == {
        "name": "admin",
        "database": "admin",
        "exists": True,
        "roles": [],
        "bootstrap": False,
    }
    assert mod.mongodb_user("webstack", database="webstack", **conn)["exists"] is False
    assert mod.mongodb_login("webstack", APP_PASSWORD, database="webstack", **conn) is False

    created = mod.mongodb_user_create("webstack", APP_PASSWORD, [], database="webstack", **conn)
    assert created == {"name": "webstack", "database": "webstack", "roles": []}
    assert mod.mongodb_user("webstack", database="webstack", **conn)["exists"] is True
    assert mod.mongodb_login("webstack", APP_PASSWORD, database="webstack", **conn) is True
    assert mod.mongodb_login("webstack", "wrong", database="webstack", **conn) is False

    updated = mod.mongodb_user_update("webstack", database="webstack", passwd="new-Pw-2", **conn)
    assert updated == {"name": "webstack", "database": "webstack", "password": True, "roles": None}
    assert mod.mongodb_login("webstack", "new-Pw-2", database="webstack", **conn) is True
    assert mod.mongodb_login("webstack", APP_PASSWORD, database="webstack", **conn) is False


def test_a_refused_admin_login_without_localhost_exception_fails_clearly(loaders, ferretdb):
    with pytest.raises(CommandExecutionError, match="no localhost exception"):
        loaders.modules.webstack.mongodb_user(
            "admin", host="127.0.0.1", port=ferretdb, password="not-the-password"
        )


def test_state_creates_then_leaves_alone_then_resets_the_password(loaders, ferretdb):
    ret = user_state(loaders, ferretdb, test=True)
    assert ret.result is None, ret.comment
    assert ret.changes["user"]["new"] == {"name": "webstack", "database": "webstack", "roles": []}

    ret = user_state(loaders, ferretdb)
    assert ret.result is True, ret.comment
    assert ret.changes == {
        "user": {"old": None, "new": {"name": "webstack", "database": "webstack", "roles": []}}
    }
    assert APP_PASSWORD not in repr(ret.comment) + repr(ret.changes)

    again = user_state(loaders, ferretdb)
    assert (again.result, again.changes) == (True, {}), again.comment

    # Someone changed the password behind Salt's back: the state's login fails, it resets it.
    loaders.modules.webstack.mongodb_user_update(
        "webstack", database="webstack", passwd="changed", host="127.0.0.1", port=ferretdb
    )
    preview = user_state(loaders, ferretdb, test=True)
    assert preview.result is None
    assert preview.changes == {"password": {"old": "refused", "new": "reset"}}
    reset = user_state(loaders, ferretdb)
    assert reset.result is True, reset.comment
    assert reset.changes == {"password": {"old": "refused", "new": "reset"}}
    assert loaders.modules.webstack.mongodb_login(
        "webstack", APP_PASSWORD, database="webstack", host="127.0.0.1", port=ferretdb
    )
    assert user_state(loaders, ferretdb).changes == {}


def test_ferretdb_refuses_roles_and_the_state_says_so(loaders, ferretdb):
    ret = loaders.states.webstack.mongodb_user(
        name="webstack",
        passwd=APP_PASSWORD,
        roles=["readWrite"],
        database="webstack",
        host="127.0.0.1",
        port=ferretdb,
        wait=5,
    )
    assert ret.result is False
    assert 'support for field "roles"' in ret.comment
    assert "not implemented yet" in ret.comment
