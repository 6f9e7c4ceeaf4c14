"""Unit tests of _modules/webstack_app.py against loopback (no nginx or gunicorn needed)."""

from unittest import mock

import pytest
from salt.exceptions import CommandExecutionError
from support.salt_modules import UTILS, load
from support.webstack_nodes import lb_node

app = load("_modules", "webstack_app")


@pytest.fixture
def configure_loader_modules():
    node = mock.MagicMock(return_value=lb_node(roles=["app"]))
    return {
        app: {"__salt__": {"webstack_topology.node": node}, "__pillar__": {}, "__utils__": UTILS}
    }


def test_health_asks_nginx_and_gunicorn(tmp_path):
    view = app.health(url="http://127.0.0.1:9/", app_socket=str(tmp_path / "g.sock"))
    assert view["nginx"]["url"] == "http://127.0.0.1:9"
    assert view["nginx"]["healthz"]["url"] == "http://127.0.0.1:9/healthz"
    assert view["gunicorn"]["readyz"]["url"] == f"unix:{tmp_path / 'g.sock'}/readyz"
    assert view["healthy"] is False and view["ready"] is False


def test_wait_healthy_gives_up_with_the_last_error():
    with pytest.raises(CommandExecutionError, match=r"http://127.0.0.1:9/healthz not healthy"):
        app.wait_healthy(timeout=0, url="http://127.0.0.1:9")


def test_the_url_defaults_to_the_nodes_address():
    get = mock.MagicMock(return_value={"ok": True})
    with mock.patch.object(app, "__utils__", {**UTILS, "webstack_http.get": get}):
        assert app.wait_healthy(timeout=0) == {"ok": True}
    assert get.call_args.kwargs["url"] == "http://10.99.1.1:80"
    with mock.patch.object(app, "__salt__", {}):
        with pytest.raises(CommandExecutionError, match="no address in the topology"):
            app.wait_healthy(timeout=0)
