"""
A real Patroni + etcd + PostgreSQL 15 cluster on loopback addresses, from the configs the state
tree renders: each "node" is an etcd member and a Patroni (running PostgreSQL) on its own
127.x.y.z address, as on a db node, with only what must differ on one host moved into a temp dir
(data dirs, unix sockets, .pgpass) and the 127.0.0.1 listeners dropped (three nodes cannot share
it; and, for the same reason, pg_hba admits replication from 127.0.0.1, where loopback traffic
comes from). Everything runs from Debian's packages (patroni, etcd-server, postgresql-15).

Every wait is bounded; ``stop`` kills whatever is left (also on a failed test).
"""

import contextlib
import http.client
import json
import os
import pathlib
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import yaml
from labkit.run import wait_for

PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")


def missing_tools():
    """What this host lacks to run the cluster, or None."""
    if os.geteuid() != 0:
        return "needs root (PostgreSQL runs as the postgres user)"
    for tool in ("patroni", "etcd"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/bootstrap-dev installs it)"
    if not (PG_BIN / "postgres").exists():
        return f"{PG_BIN}/postgres is missing (package postgresql-15)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user"
    return None


def port_free(address, port):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def http_json(api, path, timeout=2.0, tls=None):
    """``(status, JSON)`` of GET ``path`` on ``host:port``; ``(None, error)`` if nothing answers.
    ``tls`` (``{ca_cert, cert, key}``): over https with that client certificate."""
    host, _, port = api.rpartition(":")
    try:
        if tls:
            context = ssl.create_default_context(cafile=tls["ca_cert"])
            context.load_cert_chain(tls["cert"], tls["key"])
            conn = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
        else:
            conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    except OSError as exc:
        return None, str(exc)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
    except (OSError, http.client.HTTPException) as exc:
        return None, str(exc)
    finally:
        conn.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, body


class Node:
    def __init__(self, name, api, base):
        self.name, self.api, self.base = name, api, base
        self.etcd = None
        self.patroni = None

    @property
    def data_dir(self):
        return self.base / "data"

    def postmaster_pid(self):
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


class LoopbackCluster:
    """``files``: ``{node name: {"patroni": text, "etcd": text}}`` as rendered for each db node."""

    def __init__(self, files, members, pki):
        """``pki``: the rendered configs' TLS files (``{dir, ca_cert, cert, key}``); they are
        copied where the postgres user (Patroni, PostgreSQL) can read them, as on a db node."""
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="webstack-patroni-"))
        self.root.chmod(0o755)
        self.pg = pwd.getpwnam("postgres")
        self.tls = self._copy_pki(pki)
        files = {
            name: {kind: self._moved(text, pki) for kind, text in texts.items()}
            for name, texts in files.items()
        }
        self.nodes = {}
        for member in members:
            name = member["name"]
            base = self.root / name
            (base / "run").mkdir(parents=True)
            (base / "etcd").mkdir(mode=0o700)
            for path in (base, base / "run"):
                os.chown(path, self.pg.pw_uid, self.pg.pw_gid)
            node = Node(name, member["patroni_api"], base)
            node.patroni_config = base / "patroni.yml"
            node.etcd_config = base / "etcd.yml"
            node.patroni_config.write_text(self._patroni(files[name]["patroni"], base))
            node.etcd_config.write_text(self._etcd(files[name]["etcd"], base))
            os.chown(node.patroni_config, self.pg.pw_uid, self.pg.pw_gid)
            node.patroni_config.chmod(0o600)
            self.nodes[name] = node

    # --- the rendered configs, moved into the temp dir ------------------------------------------
    def _copy_pki(self, pki):
        target = self.root / "pki"
        target.mkdir(mode=0o755)
        copied = {}
        for key in ("ca_cert", "cert", "key"):
            path = target / pathlib.Path(pki[key]).name
            shutil.copyfile(pki[key], path)
            os.chown(path, self.pg.pw_uid, self.pg.pw_gid)
            path.chmod(0o600 if key == "key" else 0o644)
            copied[key] = str(path)
        return copied

    def _moved(self, text, pki):
        for key in ("ca_cert", "cert", "key"):
            text = text.replace(pki[key], self.tls[key])
        return text

    @staticmethod
    def _patroni(text, base):
        config = yaml.safe_load(text)
        pg = config["postgresql"]
        host_port = pg["listen"]
        hosts, _, port = host_port.rpartition(":")
        pg["listen"] = ",".join(h for h in hosts.split(",") if h != "127.0.0.1") + ":" + port
        pg["data_dir"] = str(base / "data")
        pg["pgpass"] = str(base / "pgpass")
        pg["parameters"]["unix_socket_directories"] = str(base / "run")
        # On loopback every connection between "nodes" comes from 127.0.0.1 (on real nodes, from
        # the node's own address, which pg_hba names): admit it for replication and pg_rewind.
        users = pg["authentication"]
        loopback = [
            f"hostssl replication {users['replication']['username']} 127.0.0.1/32 scram-sha-256",
            f"hostssl postgres {users['rewind']['username']} 127.0.0.1/32 scram-sha-256",
        ]
        pg["pg_hba"] = pg["pg_hba"] + loopback
        config["bootstrap"]["pg_hba"] = config["bootstrap"]["pg_hba"] + loopback
        config["log"] = {"dir": str(base), "level": "INFO"}
        return yaml.safe_dump(config)

    @staticmethod
    def _etcd(text, base):
        config = yaml.safe_load(text)
        config["data-dir"] = str(base / "etcd")
        config["listen-client-urls"] = ",".join(
            u for u in config["listen-client-urls"].split(",") if "127.0.0.1" not in u
        )
        config["log-outputs"] = [str(base / "etcd.log")]
        return yaml.safe_dump(config)

    # --- processes -------------------------------------------------------------------------------
    def _demote(self):
        os.setgid(self.pg.pw_gid)
        os.setgroups([])
        os.setuid(self.pg.pw_uid)

    def start_etcd(self, name):
        node = self.nodes[name]
        node.etcd = subprocess.Popen(
            ["etcd"],
            env={"ETCD_CONFIG_FILE": str(node.etcd_config), "PATH": os.environ["PATH"]},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start_patroni(self, name):
        node = self.nodes[name]
        log = (node.base / "patroni.out").open("ab")
        node.patroni = subprocess.Popen(
            ["patroni", str(node.patroni_config)],
            env={"PATH": os.environ["PATH"], "HOME": str(node.base), "LC_ALL": "C.UTF-8"},
            cwd=node.base,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=self._demote,  # noqa: PLW1509 - the child only drops privileges
            start_new_session=True,
        )
        log.close()

    def start(self):
        for name in self.nodes:
            self.start_etcd(name)
        for name in self.nodes:
            self.start_patroni(name)

    def kill(self, name):
        """A node dies at once: etcd, Patroni and PostgreSQL SIGKILLed, nothing shut down."""
        node = self.nodes[name]
        pid = node.postmaster_pid()
        children = _children(pid) if pid else set()
        for proc in (node.patroni, node.etcd):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # The backends notice their postmaster's death and exit on their own; wait for that (a
        # new postmaster refuses a data dir whose shared memory is still in use).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_exists(c) for c in children | {pid}):
            time.sleep(0.2)

    def restart_node(self, name):
        self.start_etcd(name)
        self.start_patroni(name)

    def stop(self):
        """Kill every node (each one, whatever happened to the others), remove the temp dir;
        then raise what a kill raised."""
        errors = []
        for name in self.nodes:
            try:
                self.kill(name)
            except (OSError, subprocess.SubprocessError) as exc:
                errors.append((name, exc))
        shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise RuntimeError(f"stopping the loopback cluster: {errors}") from errors[0][1]

    # --- observation -----------------------------------------------------------------------------
    def get(self, name, path, timeout=2.0):
        return http_json(self.nodes[name].api, path, timeout, tls=self.tls)

    def cluster(self, exclude=()):
        """The first ``GET /cluster`` answer of a live node (not in ``exclude``)."""
        for name in self.nodes:
            if name in exclude:
                continue
            status, data = self.get(name, "/cluster")
            if status == 200 and isinstance(data, dict):
                return data
        return None

    def wait(self, predicate, timeout, what, interval=0.5):
        """labkit's poll: ``(value, seconds)``; after ``timeout`` an AssertionError with the
        tail of every node's Patroni log."""
        return wait_for(
            predicate,
            timeout,
            interval,
            what,
            error=lambda m: AssertionError(f"{m}\n{self.logs()}"),
        )

    def logs(self, lines=15):
        out = []
        for node in self.nodes.values():
            for log in ("patroni.log", "etcd.log"):
                path = node.base / log
                if path.exists():
                    tail = path.read_text(errors="replace").splitlines()[-lines:]
                    out.append(f"--- {node.name} {log}\n" + "\n".join(tail))
        return "\n".join(out)

    def psql(self, name, sql, user="postgres", database="postgres"):
        """Run SQL on a node through its unix socket, as the postgres OS user (peer auth)."""
        node = self.nodes[name]
        port = yaml.safe_load(node.patroni_config.read_text())["postgresql"]["listen"].rsplit(
            ":", 1
        )[1]
        proc = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-XAtq",
                "-h",
                str(node.base / "run"),
                "-p",
                port,
                "-U",
                user,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            preexec_fn=self._demote,
            env={"PATH": os.environ["PATH"], "PGCONNECT_TIMEOUT": "3"},
        )
        return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


def _children(pid):
    """The processes whose parent is ``pid``."""
    found = set()
    for status in pathlib.Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError):
            for line in status.read_text().splitlines():
                if line.startswith("PPid:") and int(line.split()[1]) == pid:
                    found.add(int(status.parent.name))
    return found


def _exists(pid):
    if not pid:
        return False
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
