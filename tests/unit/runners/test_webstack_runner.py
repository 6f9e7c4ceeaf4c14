"""Unit tests of _runners/webstack.py: it gathers ``webstack.status`` from the minions and hands
the answers to ``webstack_verdict.summarize`` (tests/unit/utils/test_webstack_verdict.py)."""

from unittest import mock

import pytest
from support.salt_modules import UTILS, load
from support.status_answers import NODES, VIP, answer, cluster

runner = load("_runners", "webstack")


@pytest.fixture
def configure_loader_modules():
    return {runner: {"__opts__": {"conf_file": "/dev/null"}, "__context__": {}, "__utils__": UTILS}}


def test_status_gathers_every_minion_and_sets_the_exit_code():
    client = mock.MagicMock()
    client.cmd.return_value = cluster(lb1=answer("lb1", ["lb"]))
    with (
        mock.patch.object(runner.salt.client, "get_local_client", return_value=client),
        mock.patch.object(runner.salt.utils.minions, "CkMinions") as ckminions,
    ):
        ckminions.return_value.check_minions.return_value = {"minions": NODES}
        report = runner.status(timeout=7)
        assert client.cmd.call_args.args[:2] == ("*", "webstack.status")
        assert client.cmd.call_args.kwargs["timeout"] == 7
        detailed = runner.status(details=True)
    assert report["retcode"] == 1
    assert runner.__context__["retcode"] == 1
    assert set(report) == {"healthy", "retcode", "problems", "warnings", "vip", "table"}
    assert report["vip"] == {"address": VIP, "owners": []}
    assert detailed["minions"] == client.cmd.return_value
    assert detailed["backends"]["lb2"]["app"]["app1"]["status"] == "UP"


def test_virtual_needs_the_verdict_utils():
    assert runner.__virtual__() == "webstack"
    with mock.patch.object(runner, "__utils__", {}):
        assert "webstack_verdict" in runner.__virtual__()[1]
