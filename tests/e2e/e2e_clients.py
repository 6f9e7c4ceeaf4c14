"""Clients of the lab with an address of their own, hostile requests, and haproxy's own view.

The lbs limit each client address, and the lab's host (network.gateway) is exempt from those
limits (topology clients.unlimited). A test that plays several clients gives each one an address
of its own on the host's side of the lab bridge, taken from the lab's network and used by nothing
else; the bridge, and so every address on it, goes away with `lab down`.

Traffic goes only to addresses on the lab bridge; every loop is bounded in time and count.
"""

import base64
import csv
import http.client
import io
import ipaddress
import json
import socket
import subprocess
import threading
import time
from collections import Counter

import yaml
from e2e_lab import REPO
from labkit import health

SECRETS = REPO / ".lab" / "site" / "webstack_secrets.sls"


#: Addresses handed out this session: the lbs remember a client's rate for a while, so no test
#: gets an address another test used.
_USED = set()


class SourceAddresses:
    """Addresses of the lab network added to the host's bridge for the length of a test."""

    def __init__(self, lab):
        self.lab = lab.lab
        network = ipaddress.IPv4Network(self.lab.derived["network"]["cidr"])
        taken = {n.address for n in self.lab.containers} | {self.lab.gateway, self.lab.vip}
        # From the top of the network down: the topologies number their nodes from the bottom.
        self._free = [str(a) for a in reversed(list(network.hosts())) if str(a) not in taken]
        self.added = []

    def take(self):
        address = next(a for a in self._free if a not in _USED)
        _USED.add(address)
        subprocess.run(
            ["ip", "addr", "add", f"{address}/32", "dev", self.lab.bridge],
            check=True,
            capture_output=True,
        )
        self.added.append(address)
        return address

    def release(self):
        for address in self.added:
            subprocess.run(
                ["ip", "addr", "del", f"{address}/32", "dev", self.lab.bridge],
                check=False,
                capture_output=True,
            )
        self.added = []


class Answer:
    """One HTTP answer: status (None when nothing answered), headers, body."""

    def __init__(self, status, headers=None, body=b"", error=None):
        self.status, self.headers, self.body, self.error = status, headers or {}, body, error

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self):
        return f"Answer({self.status}, {self.body[:120]!r}, error={self.error!r})"


def _tls(port, tls):
    """Whether to speak TLS: the VIP's 443 and the lbs' stats port do; nginx's port 80 does not."""
    return port != 80 if tls is None else tls


def request(
    host, method, path, source=None, body=None, headers=None, port=443, timeout=10, tls=None
):
    """One request on a fresh connection from ``source`` (an address of the host); over TLS
    (verified against the site CA) unless to port 80."""
    try:
        conn = _connection(host, port, source, timeout, tls)
    except OSError as exc:
        return Answer(None, error=f"{type(exc).__name__}: {exc}")
    try:
        return _exchange(conn, method, path, body, headers)
    finally:
        conn.close()


def _connection(host, port, source, timeout, tls):
    bind = (source, 0) if source else None
    if _tls(port, tls):
        return http.client.HTTPSConnection(
            host, port, timeout=timeout, source_address=bind, context=health.tls_context()
        )
    return http.client.HTTPConnection(host, port, timeout=timeout, source_address=bind)


def _exchange(conn, method, path, body=None, headers=None):
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    except (OSError, http.client.HTTPException) as exc:
        conn.close()  # the next request on it opens a new connection
        return Answer(None, error=f"{type(exc).__name__}: {exc}")


class KeepAlive:
    """A client that keeps its connection open between requests, as a browser or a flooding
    script does (a fresh TLS handshake per request would cost the client more than the server);
    it opens a new one whenever the server has closed the last."""

    def __init__(self, host, source=None, port=443, timeout=5, tls=None):
        self._conn = _connection(host, port, source, timeout, tls)

    def request(self, method, path, body=None, headers=None):
        return _exchange(self._conn, method, path, body, headers)

    def close(self):
        self._conn.close()


def raw_request(host, data, source=None, port=443, timeout=10, tls=None):
    """Bytes sent as they are (a malformed request); the answer's status line and body."""
    try:
        with socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None
        ) as plain:
            sock = (
                health.tls_context().wrap_socket(plain, server_hostname=host)
                if _tls(port, tls)
                else plain
            )
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):  # until the server closes the connection
                chunks.append(chunk)
    except OSError as exc:
        return Answer(None, error=f"{type(exc).__name__}: {exc}")
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return Answer(status, body=body)


def bad_requests():
    """One of every kind of hostile request the app's fuzz tests know, as callables."""
    note = "/api/notes"
    json_type = {"Content-Type": "application/json"}
    return [
        ("POST", note, json.dumps({"text": "a\u0000b"}), json_type),
        ("POST", note, json.dumps({"text": "bell\u0007"}), json_type),
        ("POST", note, json.dumps({"text": "\ud800"}), json_type),
        ("POST", note, b"{not json", json_type),
        ("POST", note, b"[" * 5000, json_type),
        ("POST", note, json.dumps({"text": "x", "extra": 1}), json_type),
        ("POST", note, json.dumps({"text": "x" * 600}), json_type),
        ("POST", note, b'{"text": "' + b"a" * 70000 + b'"}', json_type),
        ("POST", note, json.dumps({"text": "ok"}), {"Content-Type": "text/plain"}),
        ("GET", "/api/notes/%00", None, {}),
        ("GET", "/api/notes/" + "f" * 5000, None, {}),
        ("GET", "/api/notes/" + "a" * 24, None, {}),
        ("DELETE", "/api/notes/not-an-id", None, {}),
        ("GET", "/api/notes?limit=%00&offset=-1", None, {}),
        ("GET", "/api/notes?limit=99999999999", None, {}),
        ("PATCH", "/api/whoami", b"x", {}),
        ("GET", "/api/whoami", None, {"X-Big": "b" * 9000}),
        ("POST", "/", b"text=hello", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("GET", "/" + "p" * 9000, None, {}),
        # Not HTTP at all, and a header without a colon: haproxy's own parser refuses these.
        ("RAW", b"GARBAGE\r\n\r\n"),
        ("RAW", b"GET /api/whoami HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"),
    ]


def send_bad(host, item, source, client=None):
    """One bad request; on ``client``'s open connection if given (a malformed one always on a
    connection of its own, which the server's parser closes)."""
    if item[0] == "RAW":
        return raw_request(host, item[1], source=source, timeout=5)
    method, path, body, headers = item
    if client is not None:
        return client.request(method, path, body=body, headers=headers)
    return request(host, method, path, source=source, body=body, headers=headers, timeout=5)


class Flood:
    """``clients`` threads sending ``requests`` in a loop, unthrottled, for at most ``seconds``."""

    def __init__(self, host, sources, seconds=10, max_requests=200_000):
        self.host, self.sources = host, sources
        self.seconds, self.max_requests = seconds, max_requests
        self.statuses = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def _run(self, source, offset):
        items = bad_requests()
        deadline = time.monotonic() + self.seconds
        index = offset
        client = KeepAlive(self.host, source)
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                answer = send_bad(self.host, items[index % len(items)], source, client)
                index += 1
                with self._lock:
                    self.statuses[answer.status] += 1
                    if sum(self.statuses.values()) >= self.max_requests:
                        return
        finally:
            client.close()

    def __enter__(self):
        for offset, source in enumerate(self.sources):
            thread = threading.Thread(target=self._run, args=(source, offset * 7), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def wait(self):
        for thread in self._threads:
            thread.join(timeout=self.seconds + 30)

    def __exit__(self, *exc):
        self._stop.set()
        self.wait()


class Paced:
    """One client sending the same GET at ``rate`` per second for ``seconds``; every answer kept."""

    def __init__(self, host, path, source, rate=20, seconds=10):
        self.host, self.path, self.source = host, path, source
        self.rate, self.seconds = rate, seconds
        self.answers = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        started = time.monotonic()
        for n in range(int(self.rate * self.seconds)):
            delay = started + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.answers.append(request(self.host, "GET", self.path, source=self.source))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._thread.join(timeout=self.seconds + 60)

    @property
    def statuses(self):
        return Counter(a.status for a in self.answers)


class Stats:
    """haproxy's own view of its app servers, read from every lb's stats page (CSV)."""

    def __init__(self, lab):
        self.lab = lab.lab
        secrets = yaml.safe_load(SECRETS.read_text())["webstack"]["secrets"]
        token = base64.b64encode(f"admin:{secrets['stats_password']}".encode()).decode()
        self._auth = {"Authorization": f"Basic {token}"}
        self._port = self.lab.derived["ports"]["stats"]

    def servers(self, lb_address):
        """``{server: row}`` of the app backend on one lb (status, chkdown, ...)."""
        answer = request(
            lb_address, "GET", "/stats;csv", headers=self._auth, port=self._port, timeout=5
        )
        if answer.status != 200:
            raise AssertionError(f"stats of {lb_address}: {answer}")
        rows = csv.DictReader(io.StringIO(answer.body.decode().lstrip("# ")))
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == "app" and row["svname"] not in ("BACKEND", "FRONTEND")
        }

    def snapshot(self):
        """``{(lb, server): (status, chkdown)}`` for every running lb."""
        view = {}
        for lb in self.lab.derived["lb"]:
            for name, row in self.servers(lb["address"]).items():
                view[(lb["name"], name)] = (row["status"], int(row["chkdown"] or 0))
        return view


class StatsWatch:
    """Polls :class:`Stats` while a test runs; records every server seen in a state but UP."""

    def __init__(self, stats, interval=0.5):
        self.stats, self.interval = stats, interval
        self.not_up = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for key, (status, _) in self.stats.snapshot().items():
                if status != "UP":
                    self.not_up.append((time.strftime("%H:%M:%S"), key, status))
            self.polls += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self.before = self.stats.snapshot()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        self.after = self.stats.snapshot()

    def marked_down(self):
        """Servers whose UP→DOWN count grew while watched."""
        return {
            key: (self.before[key][1], value[1])
            for key, value in self.after.items()
            if key in self.before and value[1] > self.before[key][1]
        }
