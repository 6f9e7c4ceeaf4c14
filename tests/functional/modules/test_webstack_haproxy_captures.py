"""
haproxy's parsers (``_utils/webstack_haproxy_api.py``, through ``webstack_haproxy``) on answers
the suite captured from a real haproxy (see conftest.py: needs root and the haproxy binary).
"""

import random

import pytest
from salt.exceptions import CommandExecutionError
from support.salt_modules import UTILS, load

haproxy = load("_modules", "webstack_haproxy")


@pytest.fixture
def configure_loader_modules():
    return {haproxy: {"__salt__": {}, "__pillar__": {}, "__utils__": UTILS}}


def test_show_stat_rows_are_keyed_by_the_csv_header(haproxy_capture):
    rows = haproxy.parse_stat_csv(haproxy_capture["show stat"])
    by_name = {(r["pxname"], r["svname"]): r for r in rows}
    assert set(by_name) == {
        ("www", "FRONTEND"),
        ("app", "app1"),
        ("app", "app2"),
        ("app", "BACKEND"),
    }
    assert by_name["www", "FRONTEND"]["status"] == "OPEN"
    assert by_name["app", "app1"]["status"] == "DRAIN"
    assert by_name["app", "app1"]["check_status"] == "L7OK"
    assert by_name["app", "app1"]["check_code"] == "200"
    assert by_name["app", "app2"]["status"] == "DOWN"
    assert by_name["app", "app2"]["check_status"] in ("L4CON", "SOCKERR")  # refused, or reset
    assert by_name["app", "app2"]["addr"].startswith("127.0.0.1:")
    # haproxy 2.6's header ends with "-" and a trailing comma: neither becomes a key.
    assert all("" not in row and "-" not in row for row in rows)


def test_show_stat_parsing_does_not_depend_on_column_order(haproxy_capture):
    lines = haproxy_capture["show stat"].strip().splitlines()
    header = lines[0][2:].split(",")
    rows = [line.split(",") for line in lines[1:]]
    order = list(range(len(header)))
    random.Random(4).shuffle(order)
    shuffled = "\n".join(
        ["# " + ",".join(header[i] for i in order)]
        + [",".join(row[i] for i in order) for row in rows]
    )
    assert haproxy.parse_stat_csv(shuffled) == haproxy.parse_stat_csv(haproxy_capture["show stat"])


def test_show_stat_rejects_an_answer_without_header(haproxy_capture):
    with pytest.raises(CommandExecutionError, match="header"):
        haproxy.parse_stat_csv(haproxy_capture["set unknown server"])


def test_servers_state_is_decoded(haproxy_capture):
    servers = {
        s["srv_name"]: s for s in haproxy.parse_servers_state(haproxy_capture["show servers state"])
    }
    assert set(servers) == {"app1", "app2"}
    assert servers["app1"]["be_name"] == "app"
    assert servers["app1"]["admin_state"] == "drain"
    assert servers["app1"]["op_state"] == "running"
    assert servers["app1"]["check_result"] == "passed"
    assert servers["app2"]["admin_state"] == "ready"
    assert servers["app2"]["op_state"] == "stopped"
    assert servers["app2"]["check_result"] == "failed"
    assert isinstance(servers["app2"]["srv_port"], int)


def test_servers_state_refuses_an_unknown_format_version(haproxy_capture):
    text = haproxy_capture["show servers state"].replace("1\n", "2\n", 1)
    with pytest.raises(CommandExecutionError, match="version '2'"):
        haproxy.parse_servers_state(text)


def test_saved_server_state_reads_the_capture(tmp_path, haproxy_capture):
    state_file = tmp_path / "server-state"
    state_file.write_text(haproxy_capture["show servers state"])
    assert haproxy.saved_server_state("app1", state_file=str(state_file)) == "drain"
    assert haproxy.saved_server_state("app2", state_file=str(state_file)) == "ready"
    assert haproxy.saved_server_state("app3", state_file=str(state_file)) is None
    assert haproxy.saved_server_state("app1", state_file=str(tmp_path / "missing")) is None
