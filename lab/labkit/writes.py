"""A paced stream of writes (or requests) in a thread, and what became of each one.

The bench and the tests measure a failover the same way: writes go on while a node dies, every
acknowledged one is kept (to be looked for afterwards), every failure with its time. One class
for both:

- ``open_loop=False`` (the tests): one write at a time, at most ``rate`` per second (a pause of
  ``1/rate`` after an acknowledged write, none with ``rate=None``), ``failure_pause`` after a
  failed one;
- ``open_loop=True`` (the bench): write ``n`` leaves at ``n/rate`` seconds whatever the answers,
  from a pool of ``workers`` threads, as fresh clients would arrive.

``write(seq)`` returns ``(key, value)`` for an acknowledged write (kept in :attr:`acked`) or
raises :class:`WriteFailed` with what to record. Any other exception is a bug in the caller's
write function: the stream stops and re-raises it when it is left.
"""

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor


class WriteFailed(Exception):
    """A write that was not acknowledged; ``detail`` is recorded with its time."""

    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


class PacedWrites:
    """``write(0)``, ``write(1)``, ... in a thread until stopped, at most ``max_writes`` writes and
    ``max_seconds`` seconds. Use it as a context manager: entering starts the stream, leaving
    stops it and waits for the writes in flight."""

    def __init__(
        self,
        write,
        *,
        rate=None,
        max_writes=None,
        max_seconds=60,
        failure_pause=0.0,
        open_loop=False,
        workers=8,
        join_timeout=30,
    ):
        if open_loop and not rate:
            raise ValueError("an open-loop stream needs a rate")
        self.write = write
        self.rate, self.max_writes, self.max_seconds = rate, max_writes, max_seconds
        self.failure_pause, self.open_loop, self.join_timeout = (
            failure_pause,
            open_loop,
            join_timeout,
        )
        self.acked = {}  # key -> value, in the order they were acknowledged
        self.successes = []  # monotonic times of the acknowledgements
        self.failures = []  # (monotonic time, detail)
        self.results = []  # (due or sent, done, ok) of every write
        self.error = None  # an exception the write function raised (re-raised on leaving)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers) if open_loop else None
        self._thread = threading.Thread(
            target=self._schedule if open_loop else self._loop, daemon=True
        )

    # --- writing -------------------------------------------------------------------------------
    def _one(self, seq, sent):
        """One write and its bookkeeping: True when acknowledged, False when it failed, None
        when the write function itself broke (kept in :attr:`error`; the stream stops)."""
        try:
            key, value = self.write(seq)
        except WriteFailed as failed:
            done = time.monotonic()
            with self._lock:
                self.failures.append((done, failed.detail))
                self.results.append((sent, done, False))
            return False
        except Exception as exc:  # a bug, not a failed write: stop, re-raised by __exit__
            with self._lock:
                self.error = self.error or exc
            self._stop.set()
            return None
        done = time.monotonic()
        with self._lock:
            self.acked[key] = value
            self.successes.append(done)
            self.results.append((sent, done, True))
        return True

    def _seqs(self):
        return range(self.max_writes) if self.max_writes is not None else itertools.count()

    def _loop(self):
        deadline = time.monotonic() + self.max_seconds
        pause = 1.0 / self.rate if self.rate else 0.0
        for seq in self._seqs():
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            ok = self._one(seq, time.monotonic())
            if ok is None:
                return
            wait = pause if ok else self.failure_pause
            if wait:
                self._stop.wait(wait)

    def _schedule(self):
        start = time.monotonic()
        for seq in self._seqs():
            if self._stop.is_set():
                break
            due = start + seq / self.rate
            if due - start > self.max_seconds:
                break
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._pool.submit(self._one, seq, due)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=self.join_timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.error is not None and exc[0] is None:
            raise RuntimeError(f"the write function failed: {self.error!r}") from self.error

    # --- reading -------------------------------------------------------------------------------
    def count(self):
        """How many writes were acknowledged so far."""
        with self._lock:
            return len(self.acked)

    def succeeded_after(self, moment):
        """The time of the first acknowledgement after ``moment``, or None."""
        with self._lock:
            return next((t for t in self.successes if t > moment), None)

    def first_failure_after(self, moment):
        with self._lock:
            return next((t for t, _ in self.failures if t > moment), None)

    def failed_between(self, start, end):
        with self._lock:
            return sum(1 for t, _ in self.failures if start <= t <= end)

    @property
    def first_failure(self):
        """When the first write failed, or None."""
        return self.first_failure_after(float("-inf"))

    @property
    def recovered(self):
        """When the first write after the first failure was acknowledged, or None."""
        first = self.first_failure
        return None if first is None else self.succeeded_after(first)

    def summary(self):
        """Writes made, failed, and the longest time without an acknowledgement between two."""
        with self._lock:
            results = list(self.results)
        done_ok = sorted(done for _, done, ok in results if ok)
        gaps = [b - a for a, b in itertools.pairwise(done_ok)]
        return {
            "requests": len(results),
            "failed": sum(1 for *_, ok in results if not ok),
            "longest_gap_s": round(max(gaps), 3) if gaps else None,
        }
