"""Unit tests of _utils/webstack_haproxy_api.py that need no haproxy: the admin-state bits, the
client's refusals, the views. The parsers on a real haproxy's answers: tests/functional/modules."""

import pytest
from salt.exceptions import CommandExecutionError
from support.salt_modules import UTILS_MODULES

api = UTILS_MODULES["webstack_haproxy_api"]

SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord
3 app 1 app1 127.0.0.1 2 8 1 1 5 6 3 4 6 0 0 0 - 8081 -
3 app 2 app2 127.0.0.1 0 0 1 1 5 8 2 0 6 0 0 0 - 8082 -
"""  # noqa: E501
STAT = (
    "# pxname,svname,scur,status,weight,check_status,check_code,req_tot,addr,\n"
    "www,FRONTEND,3,OPEN,,,,10,,\n"
    "app,app1,1,DRAIN,1,L7OK,200,,127.0.0.1:8081,\n"
    "app,app2,0,DOWN,1,L4CON,,,127.0.0.1:8082,\n"
    "app,BACKEND,1,UP,2,,,,,\n"
)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [(0, "ready"), (0x01, "maint"), (0x02, "maint"), (0x04, "maint"), (0x20, "maint"),
     (0x08, "drain"), (0x10, "drain"), (0x09, "maint"), (0x40, "ready")],
)  # fmt: skip
def test_admin_state_mask(mask, expected):
    assert api.admin_state(mask) == expected


def test_command_names_a_missing_socket(tmp_path):
    path = tmp_path / "nowhere.sock"
    with pytest.raises(CommandExecutionError, match=str(path)):
        api.command(str(path), "show info")


def test_command_refuses_command_chains(tmp_path):
    with pytest.raises(CommandExecutionError, match="one command"):
        api.command(str(tmp_path), "show info; shutdown frontend www")


def test_valid_names():
    assert api.valid_name("app1") and api.valid_name("be_1.x:y-z")
    assert not any(api.valid_name(v) for v in ("", "app1 state maint;", "a/b", None, 1, "x" * 65))


def test_health_joins_state_and_counters_and_names_the_problems():
    view = api.health(api.parse_stat_csv(STAT), SERVERS_STATE)
    app = view["backends"]["app"]
    assert (app["servers_total"], app["servers_up"], app["servers_serving"]) == (2, 1, 0)
    assert app["servers"]["app1"]["admin_state"] == "drain"
    assert app["servers"]["app1"]["sessions"] == 1 and app["servers"]["app1"]["check_code"] == 200
    assert app["servers"]["app2"]["up"] is False
    assert view["frontends"]["www"] == {"status": "OPEN", "sessions": 3, "requests": 10}
    assert view["healthy"] is False
    assert view["problems"] == ["backend app: no server in service"]


def test_number_keeps_text_and_empties():
    assert (api.number("7"), api.number(""), api.number(None), api.number("L7OK")) == (
        7,
        None,
        None,
        "L7OK",
    )


# `show events requests` from haproxy 2.6.12 (Debian 12) with the lb's ring and log-format: three
# requests, the second with a client's own X-Request-ID, the third with one it replaced.
SHOW_EVENTS = (
    "2026-12-01T16:24:53.594337+00:00 127.0.0.1:60832 [01/Dec/2026:16:24:53.594] www "
    "www/<NOSRV> 0/-1/-1/-1/0 200 73 - - LR-- 1/1/0/0/0 0/0 "
    '"GET /a HTTP/1.1" 7F000001EDA07F00000146A06B0EF4D500003D5C\n'
    "2026-12-01T16:24:53.610691+00:00 127.0.0.1:60848 [01/Dec/2026:16:24:53.609] www "
    "www/<NOSRV> 0/-1/-1/-1/0 200 73 - - LR-- 1/1/0/0/0 0/0 "
    '"GET /b?x=1 HTTP/1.1" client-id.1\n'
    "2026-12-01T16:24:53.629153+00:00 127.0.0.1:60852 [01/Dec/2026:16:24:53.628] www "
    "www/<NOSRV> 0/-1/-1/-1/0 200 73 - - LR-- 1/1/0/0/0 0/0 "
    '"GET /c HTTP/1.1" 7F000001EDB47F00000146A06B0EF4D500023D5C\n\n'
)


def test_request_lines_are_the_newest_oldest_first():
    lines = api.request_lines(SHOW_EVENTS, lines=2)
    assert [line.split('"')[1] for line in lines] == ["GET /b?x=1 HTTP/1.1", "GET /c HTTP/1.1"]
    assert len(api.request_lines(SHOW_EVENTS)) == 3


def test_request_lines_of_one_request_id():
    (line,) = api.request_lines(SHOW_EVENTS, request_id="client-id.1")
    assert '"GET /b?x=1 HTTP/1.1"' in line
    assert api.request_lines(SHOW_EVENTS, request_id="client-id") == []  # whole field only


def test_request_lines_of_an_unknown_ring_is_an_error():
    with pytest.raises(CommandExecutionError, match="No such event sink"):
        api.request_lines("No such event sink\n")


@pytest.mark.parametrize("value", ["client-id.1", "7F000001EDA0", "a" * 128])
def test_valid_request_ids(value):
    assert api.valid_request_id(value)


@pytest.mark.parametrize("value", ["", "bad id", "a" * 129, "x;y", None, 5])
def test_invalid_request_ids(value):
    assert not api.valid_request_id(value)
