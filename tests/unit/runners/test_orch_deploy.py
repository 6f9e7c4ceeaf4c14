"""
salt/orch/deploy.sls: rendered by Salt's own renderers (jinja|yaml) from a topology in pillar,
then compiled and run by Salt's own state engine with the orchestration state functions
(``salt.function``, ``salt.state``) replaced by recorders, to assert the order of the steps and
that a failing node stops the deploy with the following nodes untouched.
"""

import copy
from unittest import mock

import pytest
import salt.config
import salt.loader
import salt.state
import salt.template
import salt.utils.data
import yaml
from support.orch_deploy import STEPS
from support.salt_modules import REPO, UTILS, load

#: The runner the orchestration asks for the derived topology (the master has no custom modules).
runner = load("_runners", "webstack")

SLS = REPO / "salt" / "orch" / "deploy.sls"
LAB = yaml.safe_load((REPO / "topology" / "lab.yaml").read_text())
NOTHING = "webstack-orch-deploy-nothing-test-fail_without_changes"


@pytest.fixture
def opts(tmp_path):
    opts = salt.config.minion_config(None)
    # The file roots: the orchestration imports webstack/map.jinja (its pillar parts).
    opts.update(
        file_client="local",
        cachedir=str(tmp_path / "cache"),
        id="master_master",
        file_roots={"base": [str(REPO / "salt")]},
    )
    return opts


def render(opts, pillar):
    def pillar_get(key, default="", **_):
        return salt.utils.data.traverse_dict_and_list(pillar, key, default, delimiter=":")

    def saltutil_runner(name, arg=None, kwarg=None, **_):
        assert name == "webstack.derive"
        with mock.patch.object(runner, "__utils__", UTILS, create=True):
            return runner.derive(*(arg or []), **(kwarg or {}))

    funcs = {"pillar.get": pillar_get, "saltutil.runner": saltutil_runner}
    renderers = salt.loader.render(opts, funcs)
    return salt.template.compile_template(
        str(SLS),
        renderers,
        opts["renderer"],
        opts["renderer_blacklist"],
        opts["renderer_whitelist"],
        saltenv="base",
        sls="orch.deploy",
    )


def run(opts, high, fails=None):
    """Run the high data in Salt's state engine; the orchestration calls are only recorded."""
    high = copy.deepcopy(high)
    for body in high.values():
        body.update(__sls__="orch.deploy", __env__="base")
        for key in [k for k in body if "." in k]:  # "salt.function" -> "salt": ["function", ...]
            module, function = key.split(".", 1)
            body[module] = [function, *body.pop(key)]
    calls = []

    def recorder(kind):
        def call(name, tgt, **kwargs):
            step = (kind, name if kind == "function" else kwargs["sls"], tgt, kwargs.get("arg"))
            calls.append(step)
            ok = step != fails
            return {"name": name, "result": ok, "changes": {"ok": 1} if ok else {}, "comment": ""}

        return call

    state = salt.state.State(opts)
    state.states._dict["salt.function"] = recorder("function")
    state.states._dict["salt.state"] = recorder("state")
    ret = state.call_high(high)
    assert isinstance(ret, dict), ret
    return calls, {key.split("_|-")[1]: value for key, value in ret.items()}


def steps(app, lbs="lb1,lb2"):
    return [
        ("function", "webstack.set_server_state", lbs, [app, "drain"]),
        ("state", "webstack.app", app, None),
        ("function", "webstack.wait_healthy", app, None),
        ("function", "webstack.wait_server", lbs, [app]),
        ("function", "webstack.set_server_state", lbs, [app, "ready"]),
    ]


def test_renders_one_chain_per_app_node_in_topology_order(opts):
    high = render(opts, {"webstack": {"topology": LAB}})
    assert list(high) == [
        f"webstack-orch-deploy-{app}-{step}-salt-{kind}"
        for app in ("app1", "app2")
        for step, kind in STEPS
    ]
    drain_body = high["webstack-orch-deploy-app2-drain-salt-function"]["salt.function"]
    drain = dict(kv for item in drain_body for kv in item.items())
    assert drain["require"] == [{"salt": "webstack-orch-deploy-app1-ready-salt-function"}]
    assert drain["tgt"] == "lb1,lb2" and drain["tgt_type"] == "list"
    for body in high.values():
        args = dict(kv for item in next(iter(body.values())) for kv in item.items())
        assert args["failhard"] is True
        assert args["expect_minions"] is True


def test_runs_node_after_node(opts):
    calls, results = run(opts, render(opts, {"webstack": {"topology": LAB}}))
    assert calls == steps("app1") + steps("app2")
    assert all(r["result"] for r in results.values())


def test_a_failing_node_stops_the_deploy_and_leaves_the_rest_untouched(opts):
    failing = ("function", "webstack.wait_healthy", "app1", None)
    calls, results = run(opts, render(opts, {"webstack": {"topology": LAB}}), fails=failing)
    # app1 stays drained (its "ready" never runs); app2 is never touched.
    assert calls == steps("app1")[:3]
    assert results["webstack-orch-deploy-app1-healthy-salt-function"]["result"] is False
    assert not any(step[2] == "app2" or "app2" in (step[3] or []) for step in calls)


def test_options_from_pillar(opts):
    pillar = {
        "webstack": {"topology": LAB},
        "deploy": {"nodes": ["app2"], "sls": "webstack.app.code", "timeout": 30},
    }
    high = render(opts, pillar)
    assert [key for key in high if "-drain-" in key] == [
        "webstack-orch-deploy-app2-drain-salt-function"
    ]
    calls, _ = run(opts, high)
    assert calls[1] == ("state", "webstack.app.code", "app2", None)


def test_nothing_to_deploy_fails(opts):
    high = render(opts, {"webstack": {"topology": LAB}, "deploy": {"nodes": ["lb1"]}})
    assert list(high) == [NOTHING]
    _, results = run(opts, high)
    assert results[NOTHING]["result"] is False
    assert "2 lb and 0 app node(s) among lb1" in results[NOTHING]["name"]


def test_an_invalid_topology_fails_naming_its_errors(opts):
    topology = copy.deepcopy(LAB)
    topology["nodes"] = [n for n in topology["nodes"] if "app" not in n["roles"]]
    high = render(opts, {"webstack": {"topology": topology}})
    assert list(high) == [NOTHING]
    _, results = run(opts, high)
    assert results[NOTHING]["result"] is False
    assert "no node has the role 'app'" in results[NOTHING]["name"]
