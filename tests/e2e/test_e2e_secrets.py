"""
No secret leaks out of the running lab: every value of the lab's site secrets file
(.lab/site/webstack_secrets.sls), in any of the forms support/secret_leaks.py knows (as written,
JSON- or YAML-escaped, URL-encoded, base64 at any alignment), is looked for and found nowhere in:

- the state returns: the session's converge (the lab's last-apply.json, written by `lab up`: from
  bare containers in a fresh session) and a fresh ``salt '*' state.apply --out=json``;
- ``state.show_sls webstack`` of every minion (each state's arguments);
- the master's job cache (/var/cache/salt/master/jobs: every job's arguments and returns);
- /var/log (rotated .gz files included) and the whole journal (``journalctl -o export``: every
  field, the logging processes' command lines included) of every container;
- every lab process's command line and environment (/proc/PID/cmdline and environ, read from the
  host for the processes in each container's PID namespace), sampled throughout the fresh apply
  and once after it.

The files that hold secrets on purpose (haproxy.cfg, app.json, Patroni's config, the mongod
keyfile; the site dir and the master's per-minion pillar cache) are not searched. One re-apply and
one pass over each container: about the time of a converge that changes nothing.
"""

import gzip
import io
import json
import os
import subprocess
import tarfile
import threading
import time

import pytest
import yaml
from e2e_lab import config, lxc
from labkit import saltcmd
from support import secret_leaks

JOBS = "/var/cache/salt/master/jobs"


def site_secrets():
    data = yaml.safe_load((config.SITE / "webstack_secrets.sls").read_text())
    secrets = data["webstack"]["secrets"]
    assert secrets and all(isinstance(v, str) and v for v in secrets.values()), secrets.keys()
    return secrets


def containers(lab):
    return [config.MASTER_NAME, *(n.name for n in lab.lab.nodes)]


def attach_bytes(name, *command, timeout=300):
    """stdout of ``command`` in container ``name``, as bytes (it may be binary: a tar)."""
    proc = subprocess.run(
        lxc.attach_args(name, *command), capture_output=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{name}: {command}: {proc.stderr[-2000:]!r}"
    return proc.stdout


def tar_members(blob):
    """(path, bytes) of every regular file in a tar stream; .gz files decompressed."""
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        for member in archive:
            if not member.isfile():
                continue
            data = archive.extractfile(member).read()
            if member.name.endswith(".gz"):
                try:
                    data = gzip.decompress(data)
                except OSError:
                    pass
            yield member.name, data


def leaks_in(where, data, secrets):
    """``[(where, key)]`` of each secret found in ``data`` (never the value: a failure's report
    must not leak it in turn)."""
    return [(where, key) for key in secret_leaks.find(data, secrets)]


class ProcessSampler:
    """Command lines and environments of the lab's processes, read from the host's /proc over
    and over in a thread (a short-lived ``psql -c`` would be missed by a single look)."""

    def __init__(self, names, interval=0.05):
        self.namespaces = {}
        for name in names:
            pid = lxc.init_pid(name)
            if pid is not None:
                self.namespaces[os.readlink(f"/proc/{pid}/ns/pid")] = name
        assert self.namespaces, "no running lab container"
        self.interval = interval
        self.seen = {}  # (container, kind, text) -> (pid, program), one per distinct text
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                container = self.namespaces.get(os.readlink(f"/proc/{entry.name}/ns/pid"))
                if container is None:
                    continue
                with open(f"/proc/{entry.name}/comm", encoding="utf-8", errors="replace") as f:
                    program = f.read().strip()
                for kind in ("cmdline", "environ"):
                    with open(f"/proc/{entry.name}/{kind}", "rb") as handle:
                        text = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
                    self.seen.setdefault((container, kind, text), (entry.name, program))
            except OSError:  # the process ended meanwhile
                continue

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        self.sample()


@pytest.fixture(scope="module")
def reapplied(lab):
    """(the fresh apply's full return, the process sampler that watched it)."""
    with ProcessSampler(containers(lab)) as sampler:
        result = lab.salt("*", "state.apply", timeout=1800)
    assert result, "state.apply returned nothing"
    return result, sampler


def test_no_secret_in_the_converges_return(lab):
    text = saltcmd.LAST_APPLY.read_text()
    assert json.loads(text), f"{saltcmd.LAST_APPLY} is empty"
    assert saltcmd.LAST_APPLY.stat().st_mode & 0o777 == 0o600
    assert not leaks_in(str(saltcmd.LAST_APPLY), text, site_secrets())


def test_no_secret_in_a_fresh_applys_return(reapplied):
    result, _ = reapplied
    secrets = site_secrets()
    found = []
    for minion, states in result.items():
        if not isinstance(states, dict):
            found += leaks_in(minion, json.dumps(states), secrets)
            continue
        for key, state in states.items():
            found += leaks_in(f"{minion} {key}", json.dumps(state), secrets)
    assert not found, found


def test_no_secret_in_any_minions_rendered_states(lab, reapplied):
    shown = lab.salt("*", "state.show_sls", "webstack", timeout=300)
    assert set(shown) >= {n.name for n in lab.lab.nodes}, sorted(shown)
    secrets = site_secrets()
    found = []
    for minion, states in shown.items():
        assert isinstance(states, dict), (minion, states)
        for state_id, body in states.items():
            found += leaks_in(f"{minion} {state_id}", json.dumps(body), secrets)
    assert not found, found


def test_no_secret_in_the_masters_job_cache(lab, reapplied):
    blob = attach_bytes(config.MASTER_NAME, "tar", "-C", JOBS, "-cf", "-", ".")
    secrets = site_secrets()
    found, files = [], 0
    for path, data in tar_members(blob):
        files += 1
        found += leaks_in(f"{JOBS}/{path}", data, secrets)
    assert files, f"{JOBS}: no job in the master's job cache"
    assert not found, found


def test_no_secret_in_any_log_or_the_journal(lab, reapplied):
    secrets = site_secrets()
    found = []
    for name in containers(lab):
        # The journal's own files are compressed: journalctl reads them (every field) below.
        blob = attach_bytes(name, "tar", "-C", "/var/log", "--exclude=./journal", "-cf", "-", ".")
        for path, data in tar_members(blob):
            found += leaks_in(f"{name}:/var/log/{path}", data, secrets)
        journal = attach_bytes(name, "journalctl", "--no-pager", "-o", "export", timeout=600)
        assert journal, f"{name}: empty journal"
        found += leaks_in(f"{name}: journal", journal, secrets)
    assert not found, found


def test_no_secret_in_any_processs_command_line_or_environment(reapplied):
    _, sampler = reapplied
    assert {container for container, _, _ in sampler.seen} == set(sampler.namespaces.values())
    secrets = site_secrets()
    found = []
    for (container, kind, text), (pid, program) in sampler.seen.items():
        found += leaks_in(f"{container}: {program} (pid {pid}) {kind}", text, secrets)
    assert not found, found
