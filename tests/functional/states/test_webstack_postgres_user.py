"""
``webstack_postgres.user_present`` through Salt's real loader against a real PostgreSQL 15
(support/loopback_postgres.py): the role it creates logs in over TCP with the pillar's password
(scram-sha-256, so PostgreSQL itself checks the verifier the state computed), a second run changes
nothing, a password or attribute changed behind Salt's back is put back, and PostgreSQL's own
verifiers are understood. The minion is db1 of a one-db-node ferretdb topology: its pillar holds
``db_password`` (its roles' share).
"""

import os
import subprocess

import pytest
from functional.modules import webstack_harness as harness
from support import loopback_postgres
from support.loopback_postgres import PG_BIN, LoopbackPostgres
from support.salt_modules import load
from support.state_tree import SECRETS, make_topology

PASSWORD = SECRETS["db_password"]  # what db1's pillar holds
ROLE = "app_role"
module = load("_states", "webstack_postgres")


@pytest.fixture(scope="module")
def loaders(tmp_path_factory):
    base = tmp_path_factory.mktemp("postgres-loaders")
    site = harness.write_site(base / "site", make_topology(lbs=1, apps=1, dbs=1))
    loaders = harness.make_loaders(base, "db1", site)
    yield loaders
    loaders.reset_state()


@pytest.fixture(scope="module")
def postgres():
    """A loopback PostgreSQL whose unix socket trusts local users (as peer auth would the
    postgres OS user on a node); TCP needs a scram-sha-256 password."""
    why = loopback_postgres.unavailable()
    if why:
        pytest.skip(why)
    pg = LoopbackPostgres()
    pg.start()
    try:
        hba = pg.data / "pg_hba.conf"
        hba.write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        done = pg.psql("SELECT pg_reload_conf()")
        assert done.returncode == 0, done.stderr
        yield pg
    finally:
        pg.stop()


def present(loaders, pg, **kwargs):
    return loaders.states.webstack_postgres.user_present(
        name=ROLE,
        password_pillar="webstack:secrets:db_password",
        user="postgres" if os.geteuid() == 0 else None,
        db_host=str(pg.socket_dir),
        db_port=pg.port,
        db_user=loopback_postgres.USER,
        **kwargs,
    )


def logs_in(pg, password, role=ROLE):
    done = subprocess.run(
        [
            str(PG_BIN / "psql"),
            "--no-psqlrc",
            "--host=127.0.0.1",
            f"--port={pg.port}",
            f"--username={role}",
            "--dbname=postgres",
            "--command=SELECT 1",
        ],
        env={"PATH": os.environ["PATH"], "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "2"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0


def sql(pg, statement):
    done = pg.psql(statement)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_creates_a_role_that_logs_in_then_changes_nothing(loaders, postgres):
    preview = present(loaders, postgres, test=True)
    assert preview.result is None, preview.comment
    assert sql(postgres, f"SELECT count(*) FROM pg_roles WHERE rolname = '{ROLE}'") == "0"

    ret = present(loaders, postgres)
    assert ret.result is True, ret.comment
    assert ret.changes == {
        "role": {"old": None, "new": "present"},
        "password": {"old": None, "new": "set"},
    }
    assert PASSWORD not in repr(ret.comment) + repr(ret.changes)
    assert logs_in(postgres, PASSWORD)
    assert not logs_in(postgres, "not-the-password")
    wrong = "rolsuper OR rolcreatedb OR NOT rolcanlogin"
    assert sql(postgres, f"SELECT {wrong} FROM pg_roles WHERE rolname = '{ROLE}'") == "f"

    again = present(loaders, postgres)
    assert (again.result, again.changes) == (True, {}), again.comment


def test_puts_back_a_password_and_an_attribute_changed_behind_its_back(loaders, postgres):
    assert present(loaders, postgres).result is True
    sql(postgres, f"ALTER ROLE {ROLE} CREATEDB PASSWORD 'changed-Pw-9'")
    assert not logs_in(postgres, PASSWORD)
    ret = present(loaders, postgres)
    assert ret.result is True, ret.comment
    assert ret.changes == {
        "createdb": {"old": True, "new": False},
        "password": {"old": "does not log in", "new": "reset"},
    }
    assert logs_in(postgres, PASSWORD)
    assert present(loaders, postgres).changes == {}


def test_postgresqls_own_verifiers_are_understood(postgres):
    sql(postgres, "SET password_encryption = 'scram-sha-256'; CREATE ROLE other PASSWORD 'o Pw'")
    verifier = sql(postgres, "SELECT rolpassword FROM pg_authid WHERE rolname = 'other'")
    assert verifier.startswith("SCRAM-SHA-256$")
    assert module.logs_in("o Pw", verifier)
    assert not module.logs_in("o pw", verifier)
