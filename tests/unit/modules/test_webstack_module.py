"""
Unit tests of _modules/webstack.py, the facade: the per-role summary over the component modules
(loaded from the checkout with their real functions in ``__salt__``; ``cmd.run_all`` and the
topology mocked), the reason given when a component did not load, and the conventions every
execution module keeps.
"""

import inspect
from unittest import mock

import pytest
import yaml
from salt.exceptions import CommandExecutionError
from support.salt_modules import REPO, UTILS, functions, load, public_functions
from support.webstack_nodes import lb_node

webstack = load("_modules", "webstack")
COMPONENTS = {
    name: load("_modules", name)
    for name in ("webstack_haproxy", "webstack_vip", "webstack_app", "webstack_patroni")
}
# webstack_topology is also a stdlib CLI (its main() is no Salt function): its own tests cover it.
MODULES = sorted(p.stem for p in (REPO / "_modules").glob("*.py") if p.stem != "webstack_topology")


@pytest.fixture
def salt_mocks():
    funcs = {
        "webstack_topology.node": mock.MagicMock(return_value=lb_node()),
        "cmd.run_all": mock.MagicMock(),
        "service.status": mock.MagicMock(return_value=True),
        "service.enabled": mock.MagicMock(return_value=True),
    }
    for module in COMPONENTS.values():
        funcs.update(functions(module))
    return funcs


@pytest.fixture
def configure_loader_modules(salt_mocks):
    dunders = {"__salt__": salt_mocks, "__pillar__": {}, "__grains__": {"id": "lb1"}}
    dunders["__utils__"] = UTILS
    return {module: dict(dunders) for module in [webstack, *COMPONENTS.values()]}


def test_backend_health_on_a_minion_outside_the_topology(salt_mocks):
    salt_mocks["webstack_topology.node"].return_value = {
        "valid": False,
        "errors": ["webstack:topology: missing"],
        "roles": [],
    }
    ret = webstack.backend_health()
    assert "no role in the topology" in ret["comment"]
    assert "webstack:topology: missing" in ret["comment"]


def test_backend_health_reports_a_missing_socket_per_role(tmp_path):
    ret = webstack.backend_health(role="lb", socket=str(tmp_path / "admin.sock"))
    assert ret["lb"]["healthy"] is False
    assert str(tmp_path / "admin.sock") in ret["lb"]["error"]


def test_postgresql_health_uses_pg_isready_and_peer_auth(salt_mocks):
    salt_mocks["cmd.run_all"].side_effect = [
        {"retcode": 0, "stdout": "/var/run/postgresql:5432 - accepting connections", "stderr": ""},
        {"retcode": 0, "stdout": "f\n", "stderr": ""},
    ]
    with mock.patch("salt.utils.path.which", return_value="/usr/bin/pg_isready"):
        ret = webstack.backend_health(role="db", engine="ferretdb")
    assert ret["db"] == {
        "engine": "ferretdb",
        "port": 5432,
        "accepting": True,
        "pg_isready": "/var/run/postgresql:5432 - accepting connections",
        "role": "primary",
        "healthy": True,
    }
    psql = salt_mocks["cmd.run_all"].call_args_list[1]
    assert psql.args[0][0] == "psql"
    assert psql.kwargs["runas"] == "postgres"


def test_backend_health_of_a_cluster_db_node_is_the_cluster_view(salt_mocks):
    view = {"leader": "db3", "healthy": True, "problems": []}
    salt_mocks["webstack_patroni.cluster"] = mock.MagicMock(return_value=view)
    salt_mocks["webstack_topology.node"].return_value = {
        "roles": ["db"],
        "db": {"engine": "ferretdb", "cluster": True},
        "ports": {"postgresql": 5432},
    }
    assert webstack.backend_health()["db"] == {**view, "engine": "ferretdb", "cluster": True}


def test_a_component_that_did_not_load_is_named_with_its_reason(salt_mocks):
    class Loader(dict):
        def missing_fun_string(self, name):
            return f"'{name}' is not available: pymongo is not importable"

    funcs = Loader(salt_mocks)
    with mock.patch.object(webstack, "__salt__", funcs):
        with pytest.raises(CommandExecutionError, match="pymongo is not importable"):
            webstack.mongodb_replset()
        db = webstack.backend_health(role="db", engine="mongodb")["db"]
    assert db["healthy"] is False and db["ping"] is False and db["engine"] == "mongodb"
    assert "'webstack_mongodb.health' is not available: pymongo" in db["error"]


def test_the_facade_passes_the_arguments_on(salt_mocks):
    salt_mocks["webstack_haproxy.set_server_state"] = setter = mock.MagicMock(return_value={})
    salt_mocks["webstack_mongodb.mongodb_user"] = user = mock.MagicMock(return_value={})
    webstack.set_server_state("app1", "drain", wait=3)
    setter.assert_called_once_with(
        "app1", "drain", backend="app", socket=None, state_file=None, wait=3
    )
    webstack.mongodb_user("webstack", database="webstack")
    user.assert_called_once_with("webstack", database="webstack")
    assert inspect.signature(webstack.mongodb_user).parameters["database"].default == "admin"


def test_with_an_empty_pillar_the_modules_use_the_state_trees_paths_and_names(salt_mocks):
    """What the modules open and ask for without pillar is what the state tree configures."""
    tree = yaml.safe_load((REPO / "salt/webstack/parameters/defaults.yaml").read_text())["webstack"]
    with pytest.raises(CommandExecutionError, match=tree["lb"]["haproxy"]["admin_socket"]):
        webstack.haproxy_command("show info")
    with mock.patch("builtins.open", side_effect=FileNotFoundError) as opened:
        assert webstack.saved_server_state("app1") is None
    assert opened.call_args.args[0] == tree["lb"]["haproxy"]["server_state_file"]
    salt_mocks["cmd.run_all"].return_value = {"retcode": 0, "stdout": "[]", "stderr": ""}
    vip = webstack.vip_owner()
    assert tree["lb"]["keepalived"]["state_file"] in vip["comment"]
    app = webstack.backend_health(role="app", url="http://127.0.0.1:9")["app"]
    assert app["gunicorn"]["socket"] == tree["app"]["socket"]
    salt_mocks["webstack_topology.node"].return_value = lb_node(roles=["lb", "app", "db"])
    with mock.patch("salt.utils.path.which", return_value=None):
        names = set(webstack.services())
    assert names == {
        tree["lb"]["haproxy"]["service"],
        tree["lb"]["keepalived"]["service"],
        tree["app"]["nginx"]["service"],
        tree["app"]["supervisor"]["service"],
        tree["postgresql"]["service"],
    }
    for engine, extra in (("ferretdb", "ferretdb"), ("mongodb", "mongodb")):
        salt_mocks["webstack_topology.node"].return_value = dict(
            lb_node(roles=["app", "db"]), db={"engine": engine}
        )
        with mock.patch("salt.utils.path.which", return_value=None):
            assert tree[extra]["service"] in webstack.services()


def test_a_service_whose_status_fails_is_reported_not_hidden(salt_mocks):
    salt_mocks["service.status"].side_effect = [RuntimeError("systemd gone"), True, True, True]
    services = webstack.services(role="lb")
    assert services["haproxy"] == {"running": None, "enabled": True, "error": "systemd gone"}
    assert services["keepalived"] == {"running": True, "enabled": True}


def test_status_reports_a_vip_error(salt_mocks):
    salt_mocks["cmd.run_all"].return_value = {"retcode": 1, "stdout": "", "stderr": "no netns"}
    salt_mocks["webstack_haproxy.health"] = mock.MagicMock(return_value={"ok": 1})
    ret = webstack.status()
    assert ret["vip"]["error"].endswith("no netns") and ret["vip"]["owner"] is False
    assert ret["backends"]["lb"] == {"ok": 1}


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_documents_a_cli_example(name):
    module = load("_modules", name, f"{name}_doc")
    public = public_functions(module)
    assert public
    for func_name, func in public.items():
        assert "CLI Example:" in (func.__doc__ or ""), func_name
        assert f"{module.__virtualname__}.{func_name}" in func.__doc__, func_name


def test_the_runner_documents_a_cli_example():
    for name, func in public_functions(load("_runners", "webstack")).items():
        assert "CLI Example:" in (func.__doc__ or ""), name


def test_virtual_needs_linux_and_the_utils():
    assert webstack.__virtual__() == "webstack"
    with mock.patch.object(webstack, "__utils__", {}):
        assert webstack.__virtual__()[0] is False
    with mock.patch("salt.utils.platform.is_linux", return_value=False):
        assert webstack.__virtual__()[0] is False
