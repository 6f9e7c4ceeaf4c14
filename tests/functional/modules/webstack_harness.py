"""
Real programs for the webstack module's tests: HTTP backends on loopback, an haproxy with its admin
socket in a temp dir, and keepalived instances in network namespaces of their own.

Imported by the functional and integration tests (``from functional.modules.webstack_harness
import ...``; ``tests`` is on ``pythonpath``; the unit tests load the modules through
``support/salt_modules.py`` and need none of this). Network traffic stays on loopback and inside the
namespaces made here (10.99.x.0/24 exists only there). Every process, namespace and veth is removed
by ``close()``, which the fixtures call in their finalizers, whatever the test's outcome.
"""

import contextlib
import http.server
import json
import os
import pathlib
import random
import secrets
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time

import salt.config
import yaml
from saltfactories.utils.functional import Loaders
from support.state_tree import SECRETS

REPO = pathlib.Path(__file__).resolve().parents[3]
NOTIFY = REPO / "salt" / "webstack" / "lb" / "files" / "keepalived-notify"
INSTANCE = "webstack"


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Poll ``predicate`` until it returns a truthy value; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def missing_programs(*names):
    return [name for name in names if shutil.which(name) is None]


# --------------------------------------------------------------------------------------------------
# HTTP backends
# --------------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path in ("/healthz", "/readyz"):
            body = json.dumps({"status": "ok", "server": self.server.name}).encode()
            kind = "application/json"
        else:
            body = f"hello from {self.server.name}\n".encode()
            kind = "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # haproxy's health checks hang up early when a backend stops: not worth a traceback.
        pass


class Backend:
    """An HTTP server on 127.0.0.1 answering 200 on /healthz; stop() then start() keeps its port."""

    def __init__(self, name):
        self.name = name
        self.port = None
        self._server = None
        self._thread = None

    def start(self):
        server = _Server(("127.0.0.1", self.port or 0), _Handler)
        server.name = self.name
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _UnixHandler(_Handler):
    def address_string(self):  # a unix socket's peer has no address
        return "unix"


class UnixBackend:
    """The same HTTP answers on a unix socket (as gunicorn serves the app behind nginx)."""

    def __init__(self, path, name="gunicorn"):
        self.path = str(path)
        self._server = _UnixServer(self.path, _UnixHandler)
        self._server.name = name
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        os.unlink(self.path)


# --------------------------------------------------------------------------------------------------
# haproxy
# --------------------------------------------------------------------------------------------------

HAPROXY_CFG = """\
global
    stats socket {socket} mode 600 level admin
    server-state-file {state_file}

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    # Checks every 100 ms, but a backend thread slowed by a busy test process is not "down".
    timeout check 2s
    load-server-state-from-file global

frontend www
    bind unix@{frontend}
    default_backend app

backend app
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
{servers}
"""


def admin_command(path, command, timeout=5.0):
    """The harness's own minimal runtime-API client (independent of the module under test)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


class Haproxy:
    """haproxy (master-worker, foreground); admin socket and server-state file in ``root``."""

    def __init__(self, root, servers):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket = self.root / "admin.sock"
        self.state_file = self.root / "server-state"
        self.config = self.root / "haproxy.cfg"
        self.log = self.root / "haproxy.log"
        lines = [
            f"    server {name} 127.0.0.1:{port} check inter 100ms fall 2 rise 2"
            for name, port in servers.items()
        ]
        self.config.write_text(
            HAPROXY_CFG.format(
                socket=self.socket,
                state_file=self.state_file,
                frontend=self.root / "www.sock",
                servers="\n".join(lines),
            )
        )
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["haproxy", "-W", "-db", "-f", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answers, 10, what=f"haproxy's admin socket {self.socket}")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"haproxy exited: {self.log.read_text()}")
        try:
            return "Pid:" in admin_command(self.socket, "show info")
        except OSError:
            return False

    def command(self, command):
        return admin_command(self.socket, command)

    def worker_pid(self):
        for line in self.command("show info").splitlines():
            if line.startswith("Pid:"):
                return int(line.split(":")[1])
        raise AssertionError("no Pid in 'show info'")

    def reload(self):
        """Seamless reload (SIGUSR2 to the master); returns when a new worker answers."""
        old = self.worker_pid()
        self.proc.send_signal(signal.SIGUSR2)

        def new_worker():
            try:
                return self.worker_pid() != old
            except OSError:
                return False

        wait_for(new_worker, 10, what="a new haproxy worker after the reload")

    def server_status(self, server, backend="app"):
        """The status column of ``show stat`` for one server (harness-side parsing, by header)."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == backend and row.get("svname") == server:
                return row["status"]
        raise AssertionError(f"no server {backend}/{server} in show stat")

    def admin_state(self, server, backend="app"):
        """ready/drain/maint from ``show servers state`` (harness-side parsing, by header)."""
        lines = self.command("show servers state").splitlines()
        header = lines[1].lstrip("# ").split()
        for line in lines[2:]:
            row = dict(zip(header, line.split(), strict=False))
            if row.get("be_name") == backend and row.get("srv_name") == server:
                mask = int(row["srv_admin_state"])
                return "maint" if mask & 0x27 else "drain" if mask & 0x18 else "ready"
        raise AssertionError(f"no server {backend}/{server} in show servers state")

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class _Lab:
    """A lab that ``close()`` takes down: a context manager, and a setup that fails half-way
    (``with self._closed_on_failure():``) takes down what it made, then raises."""

    @contextlib.contextmanager
    def _closed_on_failure(self):
        try:
            yield
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class HaproxyLab(_Lab):
    """Two backends (``app1``, ``app2``) on loopback behind a real haproxy."""

    def __init__(self, root, names=("app1", "app2")):
        self.backends = {}
        self.haproxy = None
        with self._closed_on_failure():
            self.backends = {name: Backend(name).start() for name in names}
            ports = {name: backend.port for name, backend in self.backends.items()}
            self.haproxy = Haproxy(root, ports).start()

    def wait_status(self, server, prefix, timeout=10):
        wait_for(
            lambda: self.haproxy.server_status(server).startswith(prefix),
            timeout,
            what=f"haproxy to report {server} {prefix}",
        )

    def close(self):
        if self.haproxy is not None:
            self.haproxy.close()
        for backend in self.backends.values():
            backend.stop()


# --------------------------------------------------------------------------------------------------
# keepalived in network namespaces
# --------------------------------------------------------------------------------------------------

KEEPALIVED_CFG = """\
global_defs {{
    router_id {router}
    script_user root
    vrrp_version {version}
}}

vrrp_instance {instance} {{
    state BACKUP
    nopreempt
    interface {interface}
    virtual_router_id 51
    priority {priority}
    advert_int {advert_int}
    unicast_src_ip {address}
    unicast_peer {{
{peers}
    }}
    virtual_ipaddress {{
        {vip}/24 dev {interface}
    }}
    notify "{notify} {state_file}"
}}
"""


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


class VrrpLab(_Lab):
    """
    ``count`` (1 or 2) keepalived instances, each in a network namespace of its own, joined by a
    veth pair (one node: both ends in its namespace). Names are unique per lab; ``close()``
    stops keepalived and deletes the namespaces (which deletes the veths).
    """

    def __init__(self, root, count=2, advert_int=1, version=2):
        assert count in (1, 2)
        self.root = pathlib.Path(root)
        token = secrets.token_hex(3)
        self.subnet = random.randint(1, 254)
        self.vip = f"10.99.{self.subnet}.100"
        self.nodes = []
        for index in range(count):
            letter = "ab"[index]
            node = {
                "name": f"lb{index + 1}",
                "netns": f"wst-{token}-{letter}",
                "interface": f"wsv{token}{letter}",
                "address": f"10.99.{self.subnet}.{index + 1}",
                "priority": 200 - 10 * index,
                "dir": self.root / f"lb{index + 1}",
                "proc": None,
            }
            node["state_file"] = node["dir"] / "vrrp.json"
            self.nodes.append(node)
        self._made = []
        with self._closed_on_failure():
            self._network()
            for node in self.nodes:
                self._write_config(node, advert_int, version)

    def _network(self):
        for node in self.nodes:
            _ip("netns", "add", node["netns"])
            self._made.append(node["netns"])
            _ip("-n", node["netns"], "link", "set", "lo", "up")
        first = self.nodes[0]
        other = self.nodes[1] if len(self.nodes) == 2 else None
        peer_name = other["interface"] if other else first["interface"] + "p"
        peer_ns = other["netns"] if other else first["netns"]
        # Created inside the first namespace, so no interface ever appears in the host's one.
        _ip("-n", first["netns"], "link", "add", first["interface"], "type", "veth",
            "peer", "name", peer_name, "netns", peer_ns)  # fmt: skip
        for node in self.nodes:
            _ip(
                "-n",
                node["netns"],
                "addr",
                "add",
                f"{node['address']}/24",
                "dev",
                node["interface"],
            )
            _ip("-n", node["netns"], "link", "set", node["interface"], "up")
        if other is None:
            _ip("-n", first["netns"], "link", "set", peer_name, "up")

    def _write_config(self, node, advert_int, version):
        node["dir"].mkdir(parents=True, exist_ok=True)
        peers = [n["address"] for n in self.nodes if n is not node] or [f"10.99.{self.subnet}.250"]
        node["config"] = node["dir"] / "keepalived.conf"
        node["config"].write_text(
            KEEPALIVED_CFG.format(
                router=node["name"],
                version=version,
                instance=INSTANCE,
                interface=node["interface"],
                priority=node["priority"],
                advert_int=advert_int,
                address=node["address"],
                peers="\n".join(f"        {p}" for p in peers),
                vip=self.vip,
                notify=NOTIFY,
                state_file=node["state_file"],
            )
        )

    def start(self, node):
        with open(node["dir"] / "keepalived.log", "ab") as log:
            node["proc"] = subprocess.Popen(
                ["ip", "netns", "exec", node["netns"], "keepalived", "--dont-fork",
                 "--log-console", "--log-detail", "--no-syslog", "--vrrp",
                 "--use-file", str(node["config"]),
                 "--pid", str(node["dir"] / "keepalived.pid"),
                 "--vrrp_pid", str(node["dir"] / "vrrp.pid")],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def start_all(self):
        for node in self.nodes:
            self.start(node)

    def stop(self, node):
        """A clean stop (SIGTERM): keepalived sends priority 0 and removes its VIP."""
        proc = node["proc"]
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def holds_vip(self, node):
        out = _ip("-n", node["netns"], "-j", "addr", "show", "dev", node["interface"]).stdout
        return any(
            addr.get("local") == self.vip for link in json.loads(out) for addr in link["addr_info"]
        )

    def recorded_state(self, node):
        try:
            return json.loads(node["state_file"].read_text())["state"]
        except (OSError, ValueError, KeyError):
            return None

    def wait_master(self, timeout=10):
        """
        The node holding the VIP once the election has settled: exactly one holds it and records
        MASTER, every other records BACKUP (with ``nopreempt``, as in production, that lasts).
        """

        def single_master():
            holders = [n for n in self.nodes if self.holds_vip(n)]
            if len(holders) != 1 or self.recorded_state(holders[0]) != "MASTER":
                return None
            others = [n for n in self.nodes if n is not holders[0]]
            if all(self.recorded_state(n) == "BACKUP" for n in others):
                return holders[0]
            return None

        return wait_for(single_master, timeout, what="exactly one keepalived MASTER with the VIP")

    def close(self):
        for node in self.nodes:
            self.stop(node)
        for name in self._made:
            _ip("netns", "delete", name, check=False)
        self._made = []


def namespaces():
    """The names of the network namespaces that exist now."""
    return {line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()}


# --------------------------------------------------------------------------------------------------
# In-process Salt (the real loader) over the repository's state tree and pillar
# --------------------------------------------------------------------------------------------------


def write_site(site, topology, lookup=None):
    """A pillar root beside pillar/: topology.yaml, the secrets and optional lookup overrides."""
    site = pathlib.Path(site)
    site.mkdir(parents=True, exist_ok=True)
    (site / "topology.yaml").write_text(yaml.safe_dump(topology))
    (site / "webstack_secrets.sls").write_text(yaml.safe_dump({"webstack": {"secrets": SECRETS}}))
    (site / "webstack_local.sls").write_text(yaml.safe_dump({"webstack": {"lookup": lookup or {}}}))
    return site


def make_loaders(base, minion_id, site):
    """saltfactories' Loaders for a masterless minion over salt/ and pillar/ + ``site``."""
    root = pathlib.Path(base) / minion_id
    root.mkdir(parents=True)
    (root / "minion").write_text(
        yaml.safe_dump(
            {
                "id": minion_id,
                "file_client": "local",
                "root_dir": str(root),
                "file_roots": {"base": [str(REPO / "salt")]},
                # Loaded straight from the checkout: salt/top.sls needs webstack_topology to
                # render, and saltutil.sync_all renders it before it has synced anything.
                "module_dirs": [str(REPO / "_modules")],
                "utils_dirs": [str(REPO / "_utils")],
                "states_dirs": [str(REPO / "_states")],
                "pillar_roots": {"base": [str(REPO / "pillar"), str(site)]},
                "log_level_logfile": "warning",
            }
        )
    )
    opts = salt.config.minion_config(str(root / "minion"))
    opts["file_client"] = "local"
    return Loaders(opts)


# --------------------------------------------------------------------------------------------------
# Captures for the parser unit tests (real outputs, made by the suite itself)
# --------------------------------------------------------------------------------------------------


def capture_haproxy(root):
    """Real runtime-API answers: app1 UP and drained, app2 DOWN (its backend stopped)."""
    lab = HaproxyLab(root)
    try:
        lab.wait_status("app1", "UP")
        lab.wait_status("app2", "UP")
        lab.backends["app2"].stop()
        lab.wait_status("app2", "DOWN")
        assert lab.haproxy.command("set server app/app1 state drain").strip() == ""
        lab.wait_status("app1", "DRAIN")
        return {
            "show stat": lab.haproxy.command("show stat"),
            "show servers state": lab.haproxy.command("show servers state"),
            "set unknown server": lab.haproxy.command("set server app/nosuch state drain"),
        }
    finally:
        lab.close()


def capture_keepalived(root):
    """What keepalived (through keepalived-notify) and iproute2 really print, MASTER then STOP."""
    lab = VrrpLab(root, count=1, advert_int=0.1, version=3)
    try:
        lab.start_all()
        node = lab.wait_master(timeout=10)
        captured = {
            "vip": lab.vip,
            "interface": node["interface"],
            "priority": node["priority"],
            "vrrp master": node["state_file"].read_text(),
            "ip addr master": _ip("-n", node["netns"], "-j", "addr", "show").stdout,
        }
        lab.stop(node)
        captured["vrrp stop"] = node["state_file"].read_text()
        captured["ip addr stopped"] = _ip("-n", node["netns"], "-j", "addr", "show").stdout
        return captured
    finally:
        lab.close()


def environment_problems():
    """Why the real-program tests cannot run here (empty when they can)."""
    problems = [
        f"{name} is not installed" for name in missing_programs("haproxy", "keepalived", "ip")
    ]
    if os.geteuid() != 0:
        problems.append("network namespaces need root")
    return problems
