"""A constant-rate request stream (open loop: requests leave on schedule, whatever the answers)."""

import http.client
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit


class Stream:
    """GET ``url`` ``rate`` times per second until stopped (at most ``max_seconds``).

    Each request uses a new connection, as a fresh client would: a connection kept open to a dead
    lb would measure the client's reconnect logic, not the stack.
    """

    def __init__(self, url, rate=50, timeout=2.0, max_seconds=60, body=None):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path or "/"
        self.rate, self.timeout, self.max_seconds = rate, timeout, max_seconds
        # With a body: POST it as JSON, and a success is 201 (a write acknowledged).
        self.body = body
        self.results = []  # (sent, done, ok)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(8, int(rate * timeout) + 4))
        self._thread = threading.Thread(target=self._schedule, daemon=True)

    def _one(self, sent):
        ok = False
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                if self.body is None:
                    conn.request("GET", self.path)
                else:
                    headers = {"Content-Type": "application/json"}
                    conn.request("POST", self.path, body=self.body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == (200 if self.body is None else 201)
            finally:
                conn.close()
        except OSError:
            ok = False
        with self._lock:
            self.results.append((sent, time.monotonic(), ok))

    def _schedule(self):
        start = time.monotonic()
        n = 0
        while not self._stop.is_set():
            due = start + n / self.rate
            if due - start > self.max_seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
                if self._stop.is_set():
                    break
            self._pool.submit(self._one, due)
            n += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def summary(self):
        """Requests sent, failed, and the longest time without a successful answer."""
        results = sorted(self.results)
        done_ok = sorted(done for _, done, ok in results if ok)
        gaps = [b - a for a, b in itertools.pairwise(done_ok)]
        return {
            "requests": len(results),
            "failed": sum(1 for *_, ok in results if not ok),
            "longest_gap_s": round(max(gaps), 3) if gaps else None,
        }
