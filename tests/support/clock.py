"""A fake monotonic clock for code that polls with ``time.monotonic`` and ``time.sleep``."""

import contextlib
from unittest import mock


@contextlib.contextmanager
def fake_clock(time_module, start=0.0):
    """Within the block, ``time_module.monotonic`` reads ``now[0]`` and ``time_module.sleep``
    advances it (the waits run instantly); yields ``now``, a one-item list."""
    now = [start]

    def sleep(seconds):
        now[0] += seconds

    with (
        mock.patch.object(time_module, "monotonic", lambda: now[0]),
        mock.patch.object(time_module, "sleep", sleep),
    ):
        yield now
