"""
A throwaway PostgreSQL 15 on the loopback, from Debian's ``postgresql-15`` binaries: one cluster in
a temporary directory, listening on 127.0.0.1 only (plus a unix socket in that directory), password
authentication (scram-sha-256) for one role that owns every database made here.

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` OS user and
every PostgreSQL process drops to it (as :mod:`support.patroni_cluster` does); as anyone else, it
runs as that user.
"""

import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = pathlib.Path(os.environ.get("WEBSTACK_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "webstack"


def unavailable():
    """Why a loopback PostgreSQL cannot run here, or None."""
    for tool in ("initdb", "postgres", "psql"):
        if not (PG_BIN / tool).exists():
            return f"{PG_BIN}/{tool} is missing (package postgresql-15)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres OS user to run PostgreSQL as"
    return None


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackPostgres:
    """``start()``, then ``create_database()`` and ``url(database)``; ``stop()`` removes it all."""

    def __init__(self):
        # Not under pytest's base temp: that is 0700 root, and the postgres user must reach this.
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="webstack-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log_path = self.root / "postgres.log"
        self.password = secrets.token_hex(16)
        self.port = _free_port()
        self.process = None
        self._owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.socket_dir.mkdir()
        self.log_path.touch()
        if self._owner is not None:
            for path in (self.root, self.socket_dir, self.log_path):
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)

    def _demote(self):
        if self._owner is not None:
            os.setgid(self._owner.pw_gid)
            os.setgroups([])
            os.setuid(self._owner.pw_uid)

    def _environ(self):
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}

    def _run(self, command, **kwargs):
        return subprocess.run(
            command,
            env=self._environ() | kwargs.pop("env", {}),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=self._demote,
            **kwargs,
        )

    def url(self, database):
        return f"postgres://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout=30):
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._owner is not None:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        pwfile.chmod(0o600)
        done = self._run(
            [
                str(PG_BIN / "initdb"),
                f"--pgdata={self.data}",
                f"--username={USER}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(self.data),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.socket_dir),
                    # A test cluster: durability buys nothing, speed does.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                env=self._environ(),
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self._demote,  # noqa: PLW1509 - the child only drops privileges
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while self.psql("SELECT 1").returncode != 0:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited with {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL did not answer within {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def psql(self, sql, database="postgres"):
        """Run SQL as the owner role over TCP; the CompletedProcess."""
        return self._run(
            [
                str(PG_BIN / "psql"),
                "--no-psqlrc",
                "--quiet",
                "--tuples-only",
                "--set=ON_ERROR_STOP=1",
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--username={USER}",
                f"--dbname={database}",
                f"--command={sql}",
            ],
            env={"PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "2"},
        )

    def create_database(self, name):
        """A new, empty database owned by the role; its URL."""
        done = self.psql(f'CREATE DATABASE "{name}"')
        if done.returncode != 0:
            raise RuntimeError(f"CREATE DATABASE {name} failed: {done.stderr}")
        return self.url(name)

    def log(self, lines=40):
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            # SIGINT is the "fast" shutdown: it does not wait for FerretDB's connections to close.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
