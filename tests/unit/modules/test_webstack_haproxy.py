"""Unit tests of _modules/webstack_haproxy.py that need no haproxy (the real one:
tests/functional/modules)."""

from unittest import mock

import pytest
from salt.exceptions import CommandExecutionError
from support.salt_modules import UTILS, load

haproxy = load("_modules", "webstack_haproxy")


@pytest.fixture
def configure_loader_modules():
    return {haproxy: {"__salt__": {}, "__pillar__": {}, "__utils__": UTILS}}


def test_set_server_state_validates_its_arguments(tmp_path):
    with pytest.raises(CommandExecutionError, match="not one of"):
        haproxy.set_server_state("app1", "down", socket=str(tmp_path))
    with pytest.raises(CommandExecutionError, match="valid haproxy name"):
        haproxy.set_server_state("app1 state maint;", "drain", socket=str(tmp_path))


def test_haproxy_command_reads_the_socket_from_pillar(tmp_path):
    path = tmp_path / "nowhere.sock"
    pillar = {"webstack": {"lookup": {"lb": {"haproxy": {"admin_socket": str(path)}}}}}
    with mock.patch.object(haproxy, "__pillar__", pillar):
        with pytest.raises(CommandExecutionError, match=str(path)):
            haproxy.haproxy_command("show info")


def test_saved_server_state_logs_an_unreadable_file(tmp_path, caplog):
    state_file = tmp_path / "server-state"
    state_file.write_text("2\n")
    assert haproxy.saved_server_state("app1", state_file=str(state_file)) is None
    assert "unsupported format version '2'" in caplog.text


def test_save_server_state_needs_its_directory(tmp_path):
    answer = "1\n# be_id be_name srv_id srv_name\n"
    with mock.patch.object(haproxy, "haproxy_command", return_value=answer):
        with pytest.raises(CommandExecutionError, match=r"directory .* is missing"):
            haproxy.save_server_state(state_file=str(tmp_path / "gone" / "server-state"))
        saved = haproxy.save_server_state(state_file=str(tmp_path / "server-state"))
    assert saved == str(tmp_path / "server-state")
    assert (tmp_path / "server-state").read_text() == answer


def test_wait_server_names_the_last_check(monkeypatch):
    view = {"up": False, "status": "DOWN", "check_status": "L4CON", "check_desc": "refused"}
    monkeypatch.setattr(haproxy, "_one_server", lambda *args: view)
    with pytest.raises(
        CommandExecutionError, match=r"app/app1 DOWN after 0s \(check: L4CON refused"
    ):
        haproxy.wait_server("app1", timeout=0)
    view["up"] = True
    assert haproxy.wait_server("app1", timeout=0) is view


def test_virtual_needs_the_utils():
    assert haproxy.__virtual__() == "webstack_haproxy"
    with mock.patch.object(haproxy, "__utils__", {}):
        assert "webstack_haproxy_api" in haproxy.__virtual__()[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lines": 0}, "lines: 0 is not a whole number"),
        ({"lines": "ten"}, "lines: 'ten' is not a whole number"),
        ({"lines": True}, "lines: True is not"),
        ({"request_id": "bad id"}, "request_id: 'bad id' is not a request id"),
        ({"request_id": "a;show info"}, "is not a request id"),
    ],
)
def test_request_log_refuses_bad_arguments_before_asking_haproxy(tmp_path, kwargs, message):
    socket = tmp_path / "never-opened.sock"  # not there: an argument error must come first
    with pytest.raises(CommandExecutionError, match=message):
        haproxy.request_log(socket=str(socket), **kwargs)
