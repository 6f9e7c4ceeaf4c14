"""Unit tests of _utils/webstack_poll.py."""

from unittest import mock

from support.clock import fake_clock
from support.salt_modules import UTILS_MODULES

poll = UTILS_MODULES["webstack_poll"]


def test_until_stops_when_the_caller_succeeds():
    answers = iter([False, False, True])
    with mock.patch.object(poll.time, "sleep") as sleep:
        for _waited in poll.until(60, 0.5):
            if next(answers):
                break
    assert sleep.call_count == 2


def test_until_gives_up_at_the_deadline():
    with fake_clock(poll.time):
        assert list(poll.until(3, 1)) == [0.0, 1.0, 2.0, 3.0]
        assert list(poll.until(0, 1)) == [0.0]
