"""
Fixtures for the app's functional tests: a real MongoDB-wire server, FerretDB on a real PostgreSQL
15 as in production, and apps talking to it.

PostgreSQL is a throwaway cluster on the loopback (:mod:`support.loopback_postgres`). It matters:
PostgreSQL refuses what SQLite stores (NUL in text and jsonb, say), and FerretDB passes its
errors through, so only this backend shows what the app must reject before the database.

FerretDB is the binary ``make test`` provides (``scripts/ensure-ferretdb`` exports its path in
``WEBSTACK_FERRETDB_BIN``). It listens on a free loopback port, telemetry and its debug HTTP
listener off: nothing leaves the loopback.
"""

import os
import pathlib
import socket
import subprocess
import time
import uuid

import pymongo
import pytest
from support import loopback_postgres
from support.app_factory import app_factory

APP_DIR = pathlib.Path(__file__).resolve().parents[3] / "app"

FERRETDB_ENV = "WEBSTACK_FERRETDB_BIN"
FERRETDB_DEFAULT = "/var/cache/webstack/ferretdb-v1.24.2/ferretdb"
SECRET = "functional-test-secret-0123456789"


def free_port():
    """A TCP port nothing listens on right now, on the loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FerretDB:
    """One FerretDB process on ``postgresql_url``; it can be stopped and started again on the same
    port and data. ``data_dir`` holds its state file and log."""

    def __init__(self, binary, data_dir, postgresql_url):
        self.binary = binary
        self.data_dir = data_dir
        self.postgresql_url = postgresql_url
        self.port = free_port()
        self.log_path = data_dir / "ferretdb.log"
        self.process = None

    @property
    def uri(self):
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout=15):
        """Start the server (if it is not running) and wait until it answers a ping."""
        if self.process is not None and self.process.poll() is None:
            return
        command = [
            self.binary,
            "--handler=postgresql",
            f"--postgresql-url={self.postgresql_url}",
            f"--listen-addr=127.0.0.1:{self.port}",
            f"--state-dir={self.data_dir}",
            "--telemetry=disable",
            "--debug-addr=-",  # its metrics/pprof HTTP listener would take a fixed port
            "--log-level=warn",
        ]
        # FERRETDB_* variables of the caller must not change what this instance does.
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FERRETDB_")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir, env=environ
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"FerretDB exited with status {self.process.returncode}:\n{self.log()}")
            try:
                with pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=200) as client:
                    client.admin.command("ping")
                return
            except pymongo.errors.PyMongoError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"FerretDB did not answer within {timeout} s:\n{self.log()}")
                time.sleep(0.05)

    def stop(self, kill=False):
        """Stop the server; ``kill`` is a crash (SIGKILL), otherwise a clean SIGTERM."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self, lines=40):
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def app_dir():
    """The app's source directory (holds gunicorn.conf.py and the package)."""
    return APP_DIR


@pytest.fixture(scope="session")
def unused_port():
    """A function returning a free loopback TCP port."""
    return free_port


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL 15 on the loopback for the whole session."""
    reason = loopback_postgres.unavailable()
    if reason:
        pytest.fail(f"no PostgreSQL for FerretDB: {reason}", pytrace=False)
    server = loopback_postgres.LoopbackPostgres()
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ferretdb_binary():
    binary = os.environ.get(FERRETDB_ENV) or FERRETDB_DEFAULT
    if not os.access(binary, os.X_OK):
        pytest.fail(
            f"no FerretDB binary at {binary}: run the tests with `make test` "
            f"(scripts/ensure-ferretdb builds it) or point {FERRETDB_ENV} at a FerretDB v1 binary",
            pytrace=False,
        )
    return binary


@pytest.fixture(scope="session")
def make_ferretdb(ferretdb_binary, postgres):
    """``make(data_dir, database=None)``: a FerretDB (not started) on a PostgreSQL database, a new
    one unless ``database`` names one; FerretDB processes on one database share their storage, as
    the app nodes' sidecars share the db node's PostgreSQL."""

    def make(data_dir, database=None):
        if database is None:
            database = f"ferretdb_{uuid.uuid4().hex[:12]}"
            postgres.create_database(database)
        server = FerretDB(ferretdb_binary, data_dir, postgres.url(database))
        server.pg_database = database
        return server

    return make


@pytest.fixture(scope="session")
def ferretdb(make_ferretdb, tmp_path_factory):
    """A running FerretDB for the whole session (a test that stops it must start it again)."""
    server = make_ferretdb(tmp_path_factory.mktemp("ferretdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def app_settings(ferretdb):
    """Settings for an app on the session's FerretDB; each call gets its own database."""

    def settings(**overrides):
        values = {
            "secret_key": SECRET,
            "node_name": "func1",
            "node_address": "192.0.2.21",
            "mongo_uri": ferretdb.uri,
            "db_name": f"t{uuid.uuid4().hex[:12]}",
        }
        values.update(overrides)
        return values

    return settings


@pytest.fixture(scope="session")
def make_app(app_settings):
    """Build apps on the session's FerretDB (own database each); clients closed at the end."""
    with app_factory(app_settings) as make:
        yield make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    """The app's own database, read directly to check what the API claims."""
    return app.extensions["webstack"].database.db
