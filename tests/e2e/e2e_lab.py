"""Driving the LXC lab from the e2e tests: the `lab` CLI, Salt on the master, HTTP to the lab.

Traffic goes only to the lab bridge's addresses (the VIP and the nodes), never anywhere else; every
loop here is bounded in time and in count.
"""

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from labkit import config, health, lxc, run, saltcmd

REPO = Path(__file__).resolve().parents[2]


def http_get(url, timeout=5):
    """``(status, body)``; status is None when nothing answered (connection refused, timeout)."""
    return _http(url, timeout)


def http_post_json(url, payload, timeout=5):
    """POST ``payload`` as JSON; ``(status, body)`` like :func:`http_get`."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    return _http(request, timeout)


def _http(request, timeout):
    url = request if isinstance(request, str) else request.full_url
    # The VIP serves https with the site CA's certificates (a plain http:// URL is redirected).
    context = health.tls_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, str(exc)


def wait_until(predicate, timeout, interval=0.25, what="condition"):
    """labkit's poll: ``(value, seconds)``; a test failure (AssertionError) after ``timeout``."""
    return run.wait_for(predicate, timeout, interval, what, error=AssertionError)


class Lab:
    """The running lab, as the tests see it."""

    def __init__(self):
        self.lab = config.load()
        self.cli = [sys.executable, str(REPO / "lab" / "lab")]
        self.odd_answers = []  # 200s from /api/whoami that were not the app's JSON

    # --- topology -----------------------------------------------------------------------------
    @property
    def lbs(self):
        return [n["name"] for n in self.lab.derived["lb"]]

    @property
    def apps(self):
        return [n["name"] for n in self.lab.derived["app"]]

    @property
    def dbs(self):
        return [n["name"] for n in self.lab.derived["db_nodes"]]

    @property
    def vip_url(self):
        return health.urls(self.lab)[0]

    def address(self, name):
        return self.lab.node(name).address

    # --- commands -----------------------------------------------------------------------------
    def run(self, *args, check=True, timeout=600):
        """`lab ARGS...` (the CLI people use); returns the CompletedProcess with output captured."""
        proc = subprocess.run(
            [*self.cli, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            output = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            raise AssertionError(f"lab {' '.join(args)} exited {proc.returncode}\n{output}")
        return proc

    def salt(self, target, function, *args, timeout=60):
        """``{minion: return}`` of a salt call on the master (JSON output)."""
        return saltcmd.salt_json(target, function, *args, timeout=timeout)

    def apply(self):
        """state.apply on every node; ``{minion: {states, failed, changed, errors}}``."""
        result = self.salt("*", "state.apply", timeout=1800)
        return saltcmd.summarize(result, {n.name for n in self.lab.nodes})

    def status(self):
        """`salt-run webstack.status` on the master: (exit code, output)."""
        proc = subprocess.run(
            lxc.attach_args(config.MASTER_NAME, "salt-run", "webstack.status"),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def container_state(self, name):
        return lxc.state(name)

    # --- the VIP ------------------------------------------------------------------------------
    def vip_holders(self):
        """Which lbs have the VIP on their interface (read from the host, works on frozen nodes)."""
        return health.vip_holders(self.lab)

    def vip_owner(self, timeout=30):
        """The single lb holding the VIP (waits for exactly one)."""
        holders, _ = wait_until(
            lambda: (h := self.vip_holders()) and len(h) == 1 and h,
            timeout,
            what="exactly one VIP holder",
        )
        return holders[0]

    # --- health -------------------------------------------------------------------------------
    def serving_apps(self, tries=12):
        """The app nodes that answered ``/whoami`` through the VIP in ``tries`` requests."""
        seen = set()
        for _ in range(tries):
            status, body = http_get(self.vip_url + "api/whoami", timeout=3)
            if status == 200:
                try:
                    seen.add(json.loads(body)["node"])
                except (ValueError, KeyError) as exc:
                    self.odd_answers.append(f"{type(exc).__name__}: {body[:200]!r}")
        return seen

    def wait_healthy(self, timeout=120):
        """One VIP holder, the page answers 200 and every app node serves through the VIP."""
        self.vip_owner(timeout)
        wait_until(
            lambda: http_get(self.vip_url)[0] == 200, timeout, what=f"{self.vip_url} to answer 200"
        )
        run.wait_for(
            lambda: self.serving_apps() >= set(self.apps),
            timeout,
            interval=1,
            what=f"every app node ({', '.join(self.apps)}) to serve through the VIP",
            error=lambda m: AssertionError(f"{m}; odd answers: {self.odd_answers[-3:]}"),
        )


class Load:
    """A bounded HTTP load on one URL from a few threads: counts every answer and every failure."""

    def __init__(self, url, workers=4, max_seconds=120, max_requests=20000):
        self.url, self.workers = url, workers
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.statuses = Counter()
        self.nodes = Counter()
        self.failures = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []

    def _worker(self):
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if sum(self.statuses.values()) >= self.max_requests:
                    return
            status, body = http_get(self.url, timeout=10)
            with self._lock:
                self.statuses[status] += 1
                if status != 200:
                    self.failures.append((time.strftime("%H:%M:%S"), status, body[:200]))
                else:
                    try:
                        self.nodes[json.loads(body).get("node")] += 1
                    except ValueError:  # a 200 that is not the app's JSON: failed all the same
                        self.failures.append((time.strftime("%H:%M:%S"), status, body[:200]))

    def __enter__(self):
        for _ in range(self.workers):
            thread = threading.Thread(target=self._worker, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=20)

    @property
    def total(self):
        return sum(self.statuses.values())
