"""labkit.writes.PacedWrites with a fake write function: pacing (one at a time or open loop), the
bounds (writes, seconds, stop) and the bookkeeping (acknowledged, failed with time, gaps)."""

import itertools
import threading
import time

import pytest
from labkit.run import LabError, wait_for
from labkit.writes import PacedWrites, WriteFailed


class Fake:
    """Acknowledges ``seq -> f"note-{seq}"`` with key ``id-{seq}``; fails while ``down``."""

    def __init__(self, cost=0.0):
        self.cost, self.down, self.calls = cost, False, []
        self.inflight = self.most_inflight = 0
        self._lock = threading.Lock()

    def __call__(self, seq):
        with self._lock:
            self.calls.append((seq, time.monotonic()))
            self.inflight += 1
            self.most_inflight = max(self.most_inflight, self.inflight)
        try:
            if self.cost:
                time.sleep(self.cost)
            if self.down:
                raise WriteFailed((seq, "down"))
            return f"id-{seq}", f"note-{seq}"
        finally:
            with self._lock:
                self.inflight -= 1


def test_acknowledged_writes_are_kept_in_order_up_to_max_writes():
    fake = Fake()
    with PacedWrites(fake, max_writes=25) as stream:
        wait_for(lambda: len(fake.calls) == 25, 5, 0.01, "25 writes")
    assert list(stream.acked.items()) == [(f"id-{i}", f"note-{i}") for i in range(25)]
    assert stream.count() == 25 and stream.failures == []
    assert len(stream.successes) == 25 and stream.successes == sorted(stream.successes)
    assert [s for s, _ in fake.calls] == list(range(25))
    assert stream.first_failure is None and stream.recovered is None


def test_closed_loop_pauses_one_over_rate_after_an_ack():
    fake = Fake()
    started = time.monotonic()
    with PacedWrites(fake, rate=50, max_writes=11):
        wait_for(lambda: len(fake.calls) == 11, 5, 0.01, "11 writes")
    elapsed = time.monotonic() - started
    assert 0.2 - 0.01 <= elapsed < 0.6  # ten pauses of 20 ms
    assert fake.most_inflight == 1


def test_failures_are_recorded_with_their_time_and_paced_apart():
    fake = Fake()
    fake.down = True
    with PacedWrites(fake, max_seconds=5, failure_pause=0.05) as stream:
        wait_for(lambda: len(stream.failures) >= 4, 5, 0.01, "four failures")
        down_until = time.monotonic()
        fake.down = False
        wait_for(lambda: stream.count() >= 3, 5, 0.01, "writes back")
    times = [t for t, _ in stream.failures]
    assert all(b - a >= 0.05 - 0.005 for a, b in itertools.pairwise(times))
    assert [d for _, d in stream.failures[:2]] == [(0, "down"), (1, "down")]
    assert stream.first_failure == times[0]
    assert stream.first_failure_after(times[0]) == times[1]
    assert stream.recovered == stream.successes[0] > times[-1]
    assert stream.succeeded_after(down_until) == stream.successes[0]
    assert stream.failed_between(times[0], times[-1]) == len(times)
    assert stream.failed_between(times[-1] + 1e-6, time.monotonic()) == 0
    assert not set(stream.acked) & {f"id-{seq}" for seq, _ in (d for _, d in stream.failures)}
    summary = stream.summary()
    assert summary["requests"] == len(stream.failures) + stream.count()
    assert summary["failed"] == len(stream.failures)


def test_leaving_stops_the_stream_and_max_seconds_bounds_it():
    fake = Fake()
    started = time.monotonic()
    with PacedWrites(fake, rate=100, max_seconds=0.3):
        time.sleep(1)
        stopped_by_deadline = len(fake.calls)
    assert 20 <= stopped_by_deadline <= 32
    assert len(fake.calls) == stopped_by_deadline
    with PacedWrites(fake, rate=1000) as stream:
        time.sleep(0.05)
    leaving = time.monotonic()
    assert time.monotonic() - started < 3
    count = stream.count()
    time.sleep(0.05)
    assert stream.count() == count and all(t <= leaving for _, t in fake.calls)


def test_open_loop_keeps_its_schedule_whatever_the_answers_take():
    fake = Fake(cost=0.1)  # each write takes 100 ms: a closed loop would make 10 per second
    with PacedWrites(fake, rate=40, max_seconds=0.5, open_loop=True, workers=8) as stream:
        time.sleep(1)
    summary = stream.summary()
    assert 20 <= summary["requests"] <= 21 and summary["failed"] == 0
    assert fake.most_inflight >= 3
    sent = sorted(s for s, _, _ in stream.results)
    assert all(abs((b - a) - 1 / 40) < 1e-9 for a, b in itertools.pairwise(sent))


def test_open_loop_summary_has_the_longest_gap_without_an_ack():
    fake = Fake()
    with PacedWrites(fake, rate=50, max_seconds=10, open_loop=True) as stream:
        time.sleep(0.3)
        fake.down = True
        time.sleep(0.4)
        fake.down = False
        time.sleep(0.3)
    summary = stream.summary()
    assert 45 <= summary["requests"] <= 55
    assert 15 <= summary["failed"] <= 25
    assert 0.35 <= summary["longest_gap_s"] <= 0.5


def test_open_loop_needs_a_rate():
    with pytest.raises(ValueError, match="rate"):
        PacedWrites(Fake(), open_loop=True)


@pytest.mark.parametrize("open_loop", [False, True])
def test_a_broken_write_function_stops_the_stream_and_is_raised(open_loop):
    def broken(seq):
        if seq == 3:
            raise KeyError("no such field")
        return seq, None

    with (
        pytest.raises(RuntimeError, match="write function failed") as raised,
        PacedWrites(broken, rate=200, open_loop=open_loop) as stream,
    ):
        wait_for(lambda: stream.error, 5, 0.01, "the error", error=LabError)
    assert isinstance(raised.value.__cause__, KeyError)
    assert stream.count() >= 3 and not stream.failures
