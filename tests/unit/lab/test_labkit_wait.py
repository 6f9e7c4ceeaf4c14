"""labkit.run.wait_for, the one poll-until-deadline of the lab, the bench and the tests."""

import time

import pytest
from labkit.run import LabError, wait_for


def test_returns_the_value_and_the_seconds_it_took():
    answers = iter([None, 0, [], "ready"])
    value, seconds = wait_for(lambda: next(answers), 5, interval=0.02)
    assert value == "ready"
    assert 0.06 - 0.01 <= seconds < 1


def test_raises_lab_error_naming_what_it_waited_for():
    started = time.monotonic()
    with pytest.raises(LabError, match=r"timed out after 0.1s waiting for the moon"):
        wait_for(lambda: False, 0.1, interval=0.02, what="the moon")
    assert time.monotonic() - started < 1


def test_raises_what_the_caller_asks_for():
    with pytest.raises(AssertionError, match="waiting for x"):
        wait_for(lambda: None, 0, interval=0.01, what="x", error=AssertionError)

    def with_logs(message):
        return RuntimeError(f"{message}\nthe logs")

    with pytest.raises(RuntimeError, match="waiting for y\nthe logs"):
        wait_for(lambda: None, 0, interval=0.01, what="y", error=with_logs)
