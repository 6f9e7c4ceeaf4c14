"""
The app under a real gunicorn with the shipped ``gunicorn.conf.py``, on a loopback port: several
worker processes, the request log on stderr, body limits on the wire, graceful shutdown.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pymongo
import pytest
import requests
from webstack_app.visits import COLLECTION as VISIT_SHARDS

WORKERS = 2
START_SECONDS = 20


class Gunicorn:
    """gunicorn started the way supervisor starts it on a node, but on a loopback port."""

    def __init__(self, app_dir, port, tmp_path, settings):
        self.app_dir = app_dir
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr_path = tmp_path / "gunicorn.stderr"
        self.config_path = tmp_path / "app.json"
        self.config_path.write_text(json.dumps(settings))
        self.process = None

    def start(self):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("WEBSTACK_")}
        environ.update(
            WEBSTACK_APP_CONFIG=str(self.config_path),
            WEBSTACK_BIND=f"127.0.0.1:{self.port}",
            WEBSTACK_WORKERS=str(WORKERS),
        )
        # The command line the app role runs under supervisor; --chdir makes the package in the
        # source directory importable, nothing is installed.
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(self.app_dir / "gunicorn.conf.py"),
            "--chdir",
            str(self.app_dir),
        ]
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                command,
                env=environ,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=self.stderr_path.parent,
            )

    def wait_ready(self):
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.stderr()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"gunicorn did not answer:\n{self.stderr()}"
            time.sleep(0.1)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture
def settings(app_settings):
    return app_settings(node_name="gunicorn1", node_address="192.0.2.31")


@pytest.fixture
def server(app_dir, unused_port, tmp_path, settings):
    server = Gunicorn(app_dir, unused_port(), tmp_path, settings)
    server.start()
    server.wait_ready()
    yield server
    server.stop()


def raw_request(port, *parts, pause=0.3):
    """Send each part as it is, ``pause`` seconds apart, and return the raw response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for index, part in enumerate(parts):
            if index:
                time.sleep(pause)
            sock.sendall(part)
        response = b""
        while part := sock.recv(65536):
            response += part
    return response


def test_serves_the_api_from_several_workers(server):
    whoami = requests.get(f"{server.url}/api/whoami", timeout=5).json()
    assert whoami["node"] == "gunicorn1"
    assert whoami["address"] == "192.0.2.31"
    assert whoami["pid"] != server.process.pid  # a worker answers, not the master

    created = requests.post(f"{server.url}/api/notes", json={"text": "via gunicorn"}, timeout=5)
    assert created.status_code == 201
    note = created.json()
    assert requests.get(f"{server.url}/api/notes/{note['id']}", timeout=5).json() == note

    with requests.Session() as session:
        pids = {session.get(f"{server.url}/api/whoami", timeout=5).json()["pid"] for _ in range(40)}
    assert 1 <= len(pids) <= WORKERS


def test_counts_concurrent_visits_across_workers(server, settings, ferretdb):
    url = f"{server.url}/"
    assert requests.get(url, timeout=5).status_code == 200
    with pymongo.MongoClient(ferretdb.uri) as client:
        shards = client[settings["db_name"]][VISIT_SHARDS]
        before = sum(shard["count"] for shard in shards.find())
        with ThreadPoolExecutor(max_workers=10) as pool:
            responses = list(pool.map(lambda _: requests.get(url, timeout=10), range(50)))
        statuses = [response.status_code for response in responses]
        assert statuses == [200] * 50
        assert sum(shard["count"] for shard in shards.find()) == before + 50


def test_one_log_line_per_request_on_stderr(server):
    response = requests.get(
        f"{server.url}/api/notes?limit=5", headers={"X-Request-ID": "e2e-req-0001"}, timeout=5
    )
    assert response.headers["X-Request-ID"] == "e2e-req-0001"
    deadline = time.monotonic() + 5
    pattern = re.compile(
        r"\[INFO\] webstack_app\.request: method=GET path=/api/notes status=200 "
        r"duration_ms=\d+\.\d request_id=e2e-req-0001 client=127\.0\.0\.1"
    )
    while not pattern.search(server.stderr()):
        assert time.monotonic() < deadline, server.stderr()
        time.sleep(0.05)
    assert server.stderr().count("request_id=e2e-req-0001") == 1  # and no access log copy


def test_body_limits_on_the_wire(server, settings):
    limit = 65536  # the default max_content_length
    declared = raw_request(
        server.port,
        b"POST /api/notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % (limit + 1),
    )
    assert declared.startswith(b"HTTP/1.1 413")
    assert b'"error":"request_entity_too_large"' in declared

    # Chunked: no Content-Length to check, the limit must hold while reading. The byte past the
    # limit comes last, after a pause, with the end of the body: the worker has read everything
    # by then and closes the connection with nothing unread, so the client sees the 413 rather
    # than a TCP reset (gunicorn 20.1 closes without draining an unread body).
    chunk = b"a" * 16384
    head = (
        b"POST /api/notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    at_limit = b"%x\r\n%s\r\n" % (len(chunk), chunk) * (limit // len(chunk))
    chunked = raw_request(server.port, head + at_limit, b"1\r\na\r\n0\r\n\r\n")
    assert chunked.startswith(b"HTTP/1.1 413")

    small = raw_request(server.port, head, b'13\r\n{"text": "chunked"}\r\n', b"0\r\n\r\n")
    assert small.startswith(b"HTTP/1.1 201")


def test_gunicorn_never_refuses_on_size(server):
    """nginx is the size gate (and answers JSON): what it forwards, gunicorn hands to the app,
    never answering with its own HTML 400 page."""
    long_path = b"/api/notes/" + b"a" * 12_000  # over gunicorn's default and largest (8190)
    many = b"".join(b"X-Header-%d: v\r\n" % i for i in range(300))  # default limit: 100
    big = b"X-Forwarded-For: " + b"1" * 12_000 + b", 203.0.113.7\r\n"  # default limit: 8190
    for line, headers in [(long_path, b""), (b"/api/whoami", many + big)]:
        response = raw_request(
            server.port,
            b"GET " + line + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + headers + b"\r\n",
        )
        head, _, body = response.partition(b"\r\n\r\n")
        assert b"content-type: application/json" in head.lower(), response[:300]
        status = int(head.split()[1])
        assert status == (400 if line == long_path else 200), response[:300]
        assert status == 200 or json.loads(body)["field"] == "id"


def test_nul_in_a_note_is_a_400_on_the_wire(server):
    response = requests.post(f"{server.url}/api/notes", json={"text": "a\u0000b"}, timeout=5)
    assert response.status_code == 400
    assert response.json()["field"] == "text"


def test_sigterm_lets_the_request_in_flight_finish(server):
    body = json.dumps({"text": "in flight during shutdown"}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/notes HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body[:10])
        )
        time.sleep(0.5)  # a worker is now blocked reading the rest of the body
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(body[10:])
        response = b""
        while part := sock.recv(65536):
            response += part
    assert response.startswith(b"HTTP/1.1 201"), response
    assert server.process.wait(timeout=25) == 0
    assert "Shutting down: Master" in server.stderr()


def test_refuses_to_start_without_a_secret_key(app_dir, unused_port, tmp_path, settings):
    del settings["secret_key"]
    server = Gunicorn(app_dir, unused_port(), tmp_path, settings)
    server.start()
    try:
        assert server.process.wait(timeout=20) == 1
    finally:
        server.stop()
    assert "webstack-app configuration: secret_key is required" in server.stderr()
    assert "Traceback" not in server.stderr()


def test_hup_boots_workers_on_new_code(app_dir, unused_port, tmp_path, settings):
    """The app role deploys new code, then HUPs gunicorn: the new workers must run the new code.

    The master imports the app's config module to check it; workers forked from a master that
    still held the app's modules would serve the old code forever.
    """
    copy = tmp_path / "app"
    shutil.copytree(app_dir, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    server = Gunicorn(copy, unused_port(), tmp_path, settings)
    server.start()
    try:
        server.wait_ready()
        assert requests.get(f"{server.url}/healthz", timeout=5).json()["status"] == "ok"
        health = copy / "webstack_app" / "health.py"
        source = health.read_text()
        assert 'status="ok"' in source
        health.write_text(source.replace('status="ok"', 'status="ok-after-deploy"'))
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + START_SECONDS
        while requests.get(f"{server.url}/healthz", timeout=5).json()["status"] != (
            "ok-after-deploy"
        ):
            assert time.monotonic() < deadline, f"old code still served:\n{server.stderr()}"
            time.sleep(0.2)
    finally:
        server.stop()
