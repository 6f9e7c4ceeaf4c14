"""Unit tests of _utils/webstack_http.py against loopback (no service binary)."""

import json

import pytest
from salt.exceptions import CommandExecutionError
from support.salt_modules import UTILS_MODULES

http = UTILS_MODULES["webstack_http"]


def test_get_reports_a_refused_connection():
    answer = http.get("/healthz", url="http://127.0.0.1:9")
    assert answer["ok"] is False
    assert answer["status"] is None
    assert answer["url"] == "http://127.0.0.1:9/healthz"
    json.dumps(answer)  # serialisable for the minion's return


def test_get_refuses_a_url_that_is_not_http():
    with pytest.raises(CommandExecutionError, match="not an http://host"):
        http.get("/healthz", url="https://example.org")


def test_request_json_keeps_the_cause():
    with pytest.raises(CommandExecutionError, match=r"127\.0\.0\.1:9/patroni: ") as info:
        http.request_json("127.0.0.1", 9, "/patroni", timeout=1)
    assert isinstance(info.value.__cause__, OSError)
