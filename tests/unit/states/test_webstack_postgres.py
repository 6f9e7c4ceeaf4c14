"""
Unit tests of _states/webstack_postgres.py: its decisions, and where the password goes.

``cmd.run_all`` is a small model of psql over one role table (``pg_authid``'s columns the state
reads): it answers the state's SELECT and applies its CREATE/ALTER ROLE, and records every call so
that the tests can look at each command line and each standard input. A real PostgreSQL checks the
verifiers and the SQL in tests/functional/states/test_webstack_postgres_user.py.
"""

import re

import pytest
from support.salt_modules import UTILS, load

state = load("_states", "webstack_postgres")
PASSWORD = "db/Pw:@1 'q'"
KEY = "webstack:secrets:db_password"


class FakePsql:
    """``cmd.run_all`` for psql: one role table, every call recorded."""

    def __init__(self):
        self.roles = {}  # name -> {"login", "superuser", "createdb", "verifier"}
        self.calls = []
        self.fail_on = lambda stdin: False

    def __call__(self, command, stdin=None, **kwargs):
        self.calls.append({"command": command, "stdin": stdin, **kwargs})
        if self.fail_on(stdin):
            return {"retcode": 3, "stdout": "", "stderr": f"ERROR:  boom\nSTATEMENT:  {stdin}"}
        select = re.search(r"WHERE rolname = '((?:[^']|'')*)'", stdin)
        if select:
            role = self.roles.get(select.group(1).replace("''", "'"))
            if role is None:
                return {"retcode": 0, "stdout": "", "stderr": ""}
            flags = [("t" if role[a] else "f") for a in ("login", "superuser", "createdb")]
            return {"retcode": 0, "stdout": "|".join([*flags, role["verifier"]]) + "\n"}
        change = re.search(r'(CREATE|ALTER) ROLE "((?:[^"]|"")*)" WITH (.*);', stdin)
        role = self.roles.setdefault(change.group(2), {"verifier": ""})
        words = change.group(3)
        for attr, word in (
            ("login", "LOGIN"),
            ("superuser", "SUPERUSER"),
            ("createdb", "CREATEDB"),
        ):
            role[attr] = re.search(rf"\b{word}\b", words) is not None
        password = re.search(r"PASSWORD '((?:[^']|'')*)'", words)
        if password:
            role["verifier"] = password.group(1).replace("''", "'")
        return {"retcode": 0, "stdout": "", "stderr": ""}

    def writes(self):
        return [c["stdin"] for c in self.calls if "ROLE" in c["stdin"]]


@pytest.fixture
def psql():
    return FakePsql()


@pytest.fixture
def opts():
    return {"test": False}


@pytest.fixture
def configure_loader_modules(psql, opts):
    return {
        state: {
            "__salt__": {"cmd.run_all": psql},
            "__opts__": opts,
            "__pillar__": {"webstack": {"secrets": {"db_password": PASSWORD}}},
            "__utils__": UTILS,
        }
    }


def present(**kwargs):
    return state.user_present("webstack", KEY, **kwargs)


def test_creates_the_role_then_leaves_it_alone(psql):
    ret = present()
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"] == {
        "role": {"old": None, "new": "present"},
        "password": {"old": None, "new": "set"},
    }
    role = psql.roles["webstack"]
    assert (role["login"], role["superuser"], role["createdb"]) == (True, False, False)
    assert state.logs_in(PASSWORD, role["verifier"])
    again = present()
    assert (again["result"], again["changes"]) == (True, {}), again["comment"]
    assert len(psql.writes()) == 1


def test_a_password_that_no_longer_logs_in_is_reset(psql):
    present()
    psql.roles["webstack"]["verifier"] = state.scram_verifier("changed behind Salt's back")
    ret = present()
    assert ret["changes"] == {"password": {"old": "does not log in", "new": "reset"}}
    assert state.logs_in(PASSWORD, psql.roles["webstack"]["verifier"])
    # An md5 (or plain) stored password never counts as logging in: it is replaced by SCRAM.
    psql.roles["webstack"]["verifier"] = "md5" + "0" * 32
    assert "password" in present()["changes"]


def test_attributes_that_differ_are_set_without_touching_the_password(psql):
    present()
    psql.roles["webstack"]["createdb"] = True
    ret = present()
    assert ret["changes"] == {"createdb": {"old": True, "new": False}}
    assert "PASSWORD" not in psql.writes()[-1]
    assert psql.roles["webstack"]["createdb"] is False


def test_test_mode_reports_and_writes_nothing(psql, opts):
    opts["test"] = True
    ret = present()
    assert ret["result"] is None
    assert "would be created" in ret["comment"]
    assert psql.writes() == []
    assert psql.roles == {}


def test_test_mode_without_a_server_says_what_it_would_do(psql, opts):
    """Before PostgreSQL runs (a first run in test mode), the state cannot ask: not an error."""
    psql.fail_on = lambda stdin: True
    opts["test"] = True
    ret = present()
    assert ret["result"] is None
    assert "would be made as wanted (cannot ask PostgreSQL: psql failed" in ret["comment"]
    opts["test"] = False
    assert present()["result"] is False


def test_the_password_is_in_no_command_line_and_no_return(psql):
    """Only a SCRAM verifier reaches psql, on its stdin; logging of the command is off."""
    ret = present()
    psql.roles["webstack"]["verifier"] = ""
    present()
    encoded = {PASSWORD, PASSWORD.replace("'", "''")}
    for call in psql.calls:
        argv = " ".join(call["command"])
        assert not any(p in argv for p in encoded), argv
        assert not any(p in call["stdin"] for p in encoded)
        assert "SCRAM-SHA-256" not in argv
        assert call["output_loglevel"] == "quiet"
        assert call["python_shell"] is False
        assert call["runas"] == "postgres"
    assert any("PASSWORD 'SCRAM-SHA-256$4096:" in w for w in psql.writes())
    assert not any(p in repr(ret) for p in encoded)


def test_a_psql_error_quoting_the_statement_does_not_show_the_verifier(psql):
    psql.roles["webstack"] = {"login": True, "superuser": False, "createdb": False, "verifier": ""}
    psql.fail_on = lambda stdin: "ROLE" in stdin  # the write fails, psql quotes the statement
    ret = present()
    assert ret["result"] is False
    assert "psql failed (3): ERROR:  boom" in ret["comment"]
    assert "<hidden>" in ret["comment"]
    assert "SCRAM-SHA-256$" not in ret["comment"]


def test_a_missing_pillar_key_fails_naming_the_key_only(psql):
    ret = state.user_present("webstack", "webstack:secrets:nothing_here")
    assert ret["result"] is False
    assert ret["comment"] == "no password: pillar webstack:secrets:nothing_here is missing or empty"
    assert psql.calls == []


def test_connection_options_reach_psql(psql):
    present(user="someone", db_host="/run/pg", db_port=5433, db_user="admin", maintenance_db="x")
    command = psql.calls[0]["command"]
    assert command[0] == "psql"
    assert {"--host=/run/pg", "--port=5433", "--username=admin", "--dbname=x"} <= set(command)
    assert psql.calls[0]["runas"] == "someone"


def test_scram_verifier_matches_rfc7677_test_vector():
    """RFC 7677's example: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096
    iterations; its ServerSignature checks ServerKey, its ClientProof checks StoredKey."""
    import base64
    import hashlib
    import hmac

    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = state.scram_verifier("pencil", salt_bytes=salt, iterations=4096)
    _, rest = verifier.split("$", 1)
    _, keys = rest.split("$")
    stored, server = (base64.b64decode(k) for k in keys.split(":"))
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    signature = hmac.new(server, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(signature) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.new(stored, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored
    assert state.logs_in("pencil", verifier) and not state.logs_in("pencil!", verifier)
