"""
The app's collections are created up front, and a FerretDB whose cached collection list is stale
is detected: two real FerretDB processes share one PostgreSQL database, as the app nodes' sidecars
share the db node's PostgreSQL.
"""

import json
import os
import subprocess
import sys

import pymongo
import pytest
from conftest import APP_DIR
from webstack_app import schema


@pytest.fixture
def twin_ferretdbs(make_ferretdb, tmp_path):
    """Two FerretDB processes on one (fresh) PostgreSQL database, each with its own log.

    The first holds a database ``app`` with one collection before the second starts, so both
    know the database (FerretDB caches the database list too) and differ only in what follows.
    """
    servers = []
    for name in ("sidecar1", "sidecar2"):
        (tmp_path / name).mkdir()
        database = servers[0].pg_database if servers else None
        servers.append(make_ferretdb(tmp_path / name, database))
    servers[0].start()
    with pymongo.MongoClient(servers[0].uri) as client:
        client.app.seed.insert_one({"_id": 1})
    servers[1].start()
    yield servers
    for server in servers:
        server.stop()


def run_schema(uri, tmp_path, db_name="app"):
    config = tmp_path / "app.json"
    config.write_text(
        json.dumps(
            {
                "mongo_uri": uri,
                "db_name": db_name,
                "node_name": "schema-test",
                "secret_key": "schema-test-secret-key",
            }
        )
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WEBSTACK_")}
    environ.update(WEBSTACK_APP_CONFIG=str(config), PYTHONPATH=str(APP_DIR))
    return subprocess.run(
        [sys.executable, "-m", "webstack_app.schema"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_second_sidecar_misses_a_collection_the_first_created(twin_ferretdbs):
    """The FerretDB behaviour the schema step exists for (if this starts failing, FerretDB fixed
    its cache and the step could go)."""
    first, second = twin_ferretdbs
    with pymongo.MongoClient(first.uri) as one, pymongo.MongoClient(second.uri) as two:
        assert two.app.list_collection_names() == ["seed"]
        assert schema.ensure(one.app) == list(schema.COLLECTIONS)
        assert "notes" not in two.app.list_collection_names()
        with pytest.raises(schema.StaleView, match="notes"):
            schema.ensure(two.app)


def test_restarting_the_stale_sidecar_lets_it_see_every_collection(twin_ferretdbs):
    first, second = twin_ferretdbs
    with pymongo.MongoClient(first.uri) as one, pymongo.MongoClient(second.uri) as two:
        assert two.app.list_collection_names() == ["seed"]
        assert schema.ensure(one.app) == list(schema.COLLECTIONS)
    second.stop()
    second.start()
    with pymongo.MongoClient(second.uri) as two:
        assert schema.ensure(two.app) == []
        assert set(schema.COLLECTIONS) <= set(two.app.list_collection_names())
        two.app.notes.insert_one({"text": "seen by both"})
    with pymongo.MongoClient(first.uri) as one:
        assert one.app.notes.find_one({"text": "seen by both"}) is not None


def test_cli_creates_once_then_reports_no_change(ferretdb, tmp_path):
    created = run_schema(ferretdb.uri, tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith('changed=yes comment="created notes')
    again = run_schema(ferretdb.uri, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith("changed=no ")


def test_cli_exits_stale_on_a_stale_sidecar(twin_ferretdbs, tmp_path):
    first, second = twin_ferretdbs
    assert run_schema(first.uri, tmp_path).returncode == 0
    stale = run_schema(second.uri, tmp_path)
    assert stale.returncode == schema.STALE, stale.stdout + stale.stderr
    assert "stale view" in stale.stdout
