"""
A throw-away node for behaviour tests of the rendered haproxy and nginx configs.

``EdgeSandbox`` starts this file as a driver inside ``unshare --mount --net --pid``: the driver
is PID 1 of its own PID namespace, so every process it starts (haproxy, nginx) dies with it,
and the network and mounts it sets up (a veth carrying the topology's addresses, tmpfs over
/run and /var/lib/haproxy) vanish with the namespace. Nothing on the host changes.

The test side calls the driver's ``op_*`` functions by name (one JSON line each way). Inside,
the driver runs:

* fake app backends (``backend_*``): stdlib HTTP servers on an app address that answer
  ``/healthz`` 200, ``/api/whoami`` 200 (naming themselves and echoing the forwarding headers),
  ``/db`` 503 in the app's JSON shape, and count their hits per path;
* a fake gunicorn (``gunicorn_*``): an HTTP server on gunicorn's unix socket that echoes
  X-Real-IP, X-Forwarded-For and X-Request-ID as JSON;
* the real haproxy and nginx with the rendered configs (``haproxy_*``, ``nginx_*``);
* clients bound to any of the sandbox's addresses (``http``, ``burst``, ``hold``).

Only the standard library is used on the driver side.
"""

import collections
import concurrent.futures
import csv
import http.client
import http.server
import io
import json
import os
import pathlib
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import traceback

if __name__ == "__main__":  # the driver runs as a script: pytest's pythonpath is not there
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "lab"))
from labkit.run import wait_for

HAPROXY = "/usr/sbin/haproxy"
NGINX = "/usr/sbin/nginx"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
GUNICORN_SOCKET = "/run/webstack-app/gunicorn.sock"


# --------------------------------------------------------------------------- test side


class EdgeSandbox:
    """The driver in its namespaces; ``call(op, **kwargs)`` runs ``op_<op>`` there."""

    def __init__(self, work, interface, addresses):
        self.work = pathlib.Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self._stderr = open(self.work / "driver.stderr", "w")
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--net",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
                sys.executable,
                __file__,
                "--driver",
                str(self.work),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        )
        self.call("setup", interface=interface, addresses=addresses)

    def call(self, op, **kwargs):
        self.proc.stdin.write(json.dumps({"op": op, "kwargs": kwargs}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"sandbox driver died during {op}:\n{self.stderr_tail()}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"sandbox {op} failed:\n{answer['error']}")
        return answer["result"]

    def stderr_tail(self, chars=4000):
        self._stderr.flush()
        return (self.work / "driver.stderr").read_text()[-chars:]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()  # unshare --kill-child takes the namespace's PID 1 along
                self.proc.wait(timeout=15)
        self.proc.stdout.close()
        self._stderr.close()


# --------------------------------------------------------------------------- driver side


#: How the driver's clients reach a TLS host (the VIP): set by ``op_tls``.
_TLS = {}


def _run(*cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")


def _wait_for(predicate, timeout, what):
    """labkit's poll every 50 ms: the value; RuntimeError after ``timeout`` seconds."""
    return wait_for(predicate, timeout, 0.05, what, error=RuntimeError)[0]


def _started(proc, ready, name, log):
    """Wait until ``ready()`` or ``proc`` exited; RuntimeError with the tail of ``log`` if so."""
    _wait_for(lambda: ready() or proc.poll() is not None, 10, f"{name} to start")
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited:\n{log.read_text()[-3000:]}")
    return proc.pid


def _stop(proc):
    """SIGTERM, then SIGKILL after 5 s; None, for the attribute that held ``proc``."""
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return None


def _can_connect(address, port):
    try:
        socket.create_connection((address, port), timeout=0.5).close()
        return True
    except OSError:
        return False


class _Quiet(http.server.BaseHTTPRequestHandler):
    """HTTP/1.0 (one request per connection), no logging, JSON answers."""

    def log_message(self, *args):
        pass

    def answer(self, status, payload):
        body = (json.dumps(payload) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def forwarding(self):
        return {
            "x_forwarded_for": self.headers.get_all("X-Forwarded-For") or [],
            "x_real_ip": self.headers.get_all("X-Real-IP") or [],
            "x_request_id": self.headers.get_all("X-Request-ID") or [],
        }


class _Served:
    """A server in a thread: ``start`` (idempotent) serves what ``_server()`` makes, ``stop``
    closes it (new connections are refused)."""

    server = None

    def _server(self):
        raise NotImplementedError

    def start(self):
        if self.server is None:
            self.server = self._server()
            serve = self.server.serve_forever
            threading.Thread(target=serve, kwargs={"poll_interval": 0.05}).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _server_context(tls):
    """A server context presenting ``tls["cert"]``/``tls["key"]`` and requiring a client
    certificate of ``tls["ca"]`` (as the app nodes' nginx requires the lbs')."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls["cert"], tls["key"])
    context.load_verify_locations(tls["ca"])
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _client_context(tls):
    context = ssl.create_default_context(cafile=tls["ca"])
    if tls.get("cert"):
        context.load_cert_chain(tls["cert"], tls["key"])
    return context


class _Backend(_Served):
    """A fake app node behind haproxy: /healthz, /api/whoami, /db (503); hits per path. With
    ``tls``, over TLS requiring a client certificate (haproxy's); the answer names its CN."""

    def __init__(self, name, address, port, tls=None):
        self.name, self.address, self.port, self.tls = name, address, port, tls
        self.hits = collections.Counter()
        self.lock = threading.Lock()

    def _server(self):
        backend = self

        class Handler(_Quiet):
            def do_GET(self):
                path = self.path.split("?", 1)[0]
                with backend.lock:
                    backend.hits[path] += 1
                if path == "/healthz":
                    self.answer(200, {"status": "ok", "server": backend.name})
                elif path == "/api/whoami":
                    self.answer(
                        200,
                        {"server": backend.name, "peer": self.client_address[0]}
                        | self.forwarding(),
                    )
                elif path == "/db":
                    self.answer(
                        503,
                        {
                            "error": "database_unavailable",
                            "message": "the database is unavailable",
                            "server": backend.name,
                        },
                    )
                else:
                    self.answer(404, {"error": "not_found", "server": backend.name})

            do_HEAD = do_GET

        server = _TCPHTTPServer((self.address, self.port), Handler)
        if self.tls:
            server.socket = _server_context(self.tls).wrap_socket(server.socket, server_side=True)
        return server


class _TCPHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default 5 drops SYNs under a burst (a 1 s stall each)


class _UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 512


class _Gunicorn(_Served):
    """gunicorn's socket, answering every request with the forwarding headers it got."""

    def __init__(self, path):
        self.path = path
        self.hits = 0

    def _server(self):
        gunicorn = self

        class Handler(_Quiet):
            def do_GET(self):
                gunicorn.hits += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.answer(
                    200,
                    {"path": self.path, "host": self.headers.get("Host")} | self.forwarding(),
                )

            do_POST = do_HEAD = do_GET

            def address_string(self):
                return "unix"

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if os.path.exists(self.path):
            os.unlink(self.path)
        server = _UnixHTTPServer(self.path, Handler)
        os.chmod(self.path, 0o666)
        return server

    def stop(self):
        """Stop and remove the socket, as when supervisor has gunicorn stopped."""
        super().stop()
        if os.path.exists(self.path):
            os.unlink(self.path)


class Driver:
    def __init__(self, work):
        self.work = pathlib.Path(work)
        self.backends = {}
        self.gunicorn = _Gunicorn(GUNICORN_SOCKET)
        self.haproxy = None
        self.nginx = None

    # -- node

    def op_setup(self, interface, addresses):
        _run("ip", "link", "set", "lo", "up")
        _run("ip", "link", "add", interface, "type", "veth", "peer", "name", f"{interface}p")
        _run("ip", "link", "set", f"{interface}p", "up")
        _run("ip", "link", "set", interface, "up")
        for address in addresses:
            _run("ip", "addr", "add", f"{address}/32", "dev", interface)
        # haproxy's admin socket and server-state file, gunicorn's socket; /dev/log (a link into
        # /run/systemd) dangles, so nothing is logged to the host's journal.
        for path in ("/run", "/var/lib/haproxy"):
            _run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", path)
        os.makedirs("/run/haproxy")
        os.makedirs(os.path.dirname(GUNICORN_SOCKET))
        return True

    def op_stop_all(self):
        self.op_haproxy_stop()
        self.op_nginx_stop()
        for backend in self.backends.values():
            backend.stop()
        self.gunicorn.stop()
        return True

    # -- fake app backends

    def op_backend_start(self, name, address=None, port=80, tls=None):
        if name not in self.backends:
            self.backends[name] = _Backend(name, address, port, tls)
        self.backends[name].start()
        return True

    def op_backend_stop(self, name):
        if name in self.backends:
            self.backends[name].stop()
        return True

    def op_backend_hits(self, reset=False):
        hits = {}
        for name, backend in self.backends.items():
            with backend.lock:
                hits[name] = dict(backend.hits)
                if reset:
                    backend.hits.clear()
        return hits

    # -- haproxy

    def op_haproxy_start(self, config):
        self.op_haproxy_stop()
        for stale in ("/var/lib/haproxy/server-state", ADMIN_SOCKET):
            if os.path.exists(stale):
                os.unlink(stale)
        path = self.work / "haproxy.cfg"
        path.write_text(config)
        log = open(self.work / "haproxy.log", "a")
        self.haproxy = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        _started(
            self.haproxy, lambda: os.path.exists(ADMIN_SOCKET), "haproxy", self.work / "haproxy.log"
        )
        _wait_for(self._admin_answers, 10, "haproxy's admin socket")
        return self.haproxy.pid

    def op_haproxy_stop(self):
        self.haproxy = _stop(self.haproxy)
        return True

    def _admin(self, command):
        """haproxy's answer to ``command`` on its admin socket (OSError if it does not answer)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(ADMIN_SOCKET)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def _admin_answers(self):
        try:
            return self._admin("show info").strip()
        except OSError:  # not listening yet: the wait goes on (and names it when it times out)
            return None

    def op_haproxy_admin(self, command):
        return self._admin(command)

    def op_haproxy_servers(self, backend="app"):
        """{server: {status, chkdown, chkfail, hrsp_5xx, ...}} from `show stat`."""
        text = self._admin("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: row
            for row in rows
            if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def op_haproxy_wait(self, status, servers, timeout=15):
        """Until each of `servers` has `status` (UP, DOWN) after a finished check; their rows."""

        def reached():
            rows = self.op_haproxy_servers()
            if all(
                rows.get(s, {}).get("status") == status
                and rows[s].get("check_status") not in ("", "INI")
                for s in servers
            ):
                return rows
            return None

        return _wait_for(reached, timeout, f"{servers} {status}")

    # -- nginx and its gunicorn

    def op_gunicorn_start(self):
        self.gunicorn.start()
        return True

    def op_gunicorn_stop(self):
        self.gunicorn.stop()
        return True

    def op_gunicorn_hits(self):
        return self.gunicorn.hits

    def op_nginx_start(self, site, probe):
        """nginx with a scratch nginx.conf that includes only `site` (as nginx-check-site)."""
        self.op_nginx_stop()
        prefix = self.work / "nginx"
        prefix.mkdir(exist_ok=True)
        (prefix / "site.conf").write_text(site)
        (prefix / "nginx.conf").write_text(
            f"pid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/error.log;\n"
            "daemon off;\nmaster_process off;\n"
            "events {}\n"
            "http {\n    include /etc/nginx/mime.types;\n    access_log off;\n"
            f"    include {prefix}/site.conf;\n}}\n"
        )
        self.nginx = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(prefix / "stderr", "w"),
        )
        return _started(self.nginx, lambda: _can_connect(probe, 80), "nginx", prefix / "error.log")

    def op_nginx_stop(self):
        self.nginx = _stop(self.nginx)
        return True

    # -- clients

    def op_tls(self, ca, hosts):
        """Requests to ``hosts`` (the VIP) go over https to port 443, verified against ``ca``,
        unless a request names its port."""
        _TLS.update(context=ssl.create_default_context(cafile=ca), hosts=set(hosts))
        return True

    @staticmethod
    def _http(
        source,
        host,
        port=None,
        method="GET",
        path="/",
        headers=None,
        body=None,
        timeout=10,
        tls=None,
    ):
        """One request; over TLS to a host registered by ``op_tls``, or with ``tls`` (``{ca,
        cert, key}``: this client's certificate) to any."""
        started = time.monotonic()
        to_vip = tls is None and port in (None, 443) and host in _TLS.get("hosts", ())
        port = port or (443 if to_vip else 80)
        try:
            if to_vip or tls:
                context = _TLS["context"] if to_vip else _client_context(tls)
                conn = http.client.HTTPSConnection(
                    host, port, timeout=timeout, source_address=(source, 0), context=context
                )
            else:
                conn = http.client.HTTPConnection(
                    host, port, timeout=timeout, source_address=(source, 0)
                )
        except OSError as exc:
            return {"status": None, "error": f"{type(exc).__name__}: {exc}"}
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                for one in value if isinstance(value, list) else [value]:
                    conn.putheader(name, one)
            data = body.encode() if isinstance(body, str) else body
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
            return {
                "status": response.status,
                "headers": {k.lower(): v for k, v in response.getheaders()},
                "body": text,
                "elapsed": time.monotonic() - started,
            }
        except (OSError, http.client.HTTPException) as exc:
            return {"status": None, "error": f"{type(exc).__name__}: {exc}"}
        finally:
            conn.close()

    def op_http(self, **request):
        return self._http(**request)

    def op_burst(self, requests, workers=16):
        """The requests concurrently (in order of submission); their answers in that order."""
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda r: self._http(**r), requests))

    def op_hold(self, source, host, port, count):
        """Open `count` idle TCP connections from `source` and keep them until `release`."""
        self._held = getattr(self, "_held", [])
        for _ in range(count):
            self._held.append(
                socket.create_connection((host, port), timeout=5, source_address=(source, 0))
            )
        return len(self._held)

    def op_release(self):
        for sock in getattr(self, "_held", []):
            sock.close()
        self._held = []
        return True

    def serve(self, stdin, stdout):
        for line in stdin:
            request = json.loads(line)
            try:
                result = getattr(self, "op_" + request["op"])(**request["kwargs"])
                answer = {"result": result}
            except Exception:
                answer = {"error": traceback.format_exc()}
            stdout.write(json.dumps(answer) + "\n")
            stdout.flush()


def main(work):
    # PID 1 of the namespace: exit on SIGTERM (PID 1 ignores signals it has no handler for).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    driver = Driver(work)
    try:
        driver.serve(sys.stdin, sys.stdout)
    finally:
        driver.op_stop_all()
    # Thread-per-connection servers may still hold threads: leave without joining them.
    os._exit(0)


if __name__ == "__main__" and sys.argv[1:2] == ["--driver"]:
    main(sys.argv[2])
