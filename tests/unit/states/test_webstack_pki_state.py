"""Unit tests of _states/webstack_pki.py: the site CA's certificate taken from the mine, waited
for while the CA minion makes it."""

from unittest import mock

from support.salt_modules import UTILS, load

state = load("_states", "webstack_pki")

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def configure(mine_answers, test=False):
    """``mine.get`` answers ``mine_answers`` one after another (the last one from then on)."""
    answers = list(mine_answers)
    calls = []

    def mine_get(target, function):
        calls.append((target, function))
        return answers.pop(0) if len(answers) > 1 else answers[0]

    state.__salt__ = {"mine.get": mine_get}
    state.__utils__ = UTILS
    state.__opts__ = {"test": test}
    return calls


def test_waits_for_the_ca_to_publish_then_writes_it(tmp_path):
    target = tmp_path / "ca.crt"
    calls = configure([{}, {"ca": {}}, {"ca": {"/etc/pki/webstack-ca/ca.crt": PEM}}])
    ret = state.ca_certificate(str(target), "ca", timeout=5, interval=0.01)
    assert ret["result"] is True and ret["changes"] == {"new": str(target)}
    assert target.read_text() == PEM
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert calls[0] == ("ca", "webstack_ca") and len(calls) == 3
    again = state.ca_certificate(str(target), "ca", timeout=5, interval=0.01)
    assert again["result"] is True and again["changes"] == {}


def test_a_ca_that_never_publishes_fails_naming_it_and_writes_nothing(tmp_path):
    target = tmp_path / "ca.crt"
    configure([{}])
    ret = state.ca_certificate(str(target), "site-ca", timeout=0.05, interval=0.01)
    assert ret["result"] is False
    assert "site-ca" in ret["comment"] and "webstack.pki.ca" in ret["comment"]
    assert not target.exists()


def test_something_else_in_the_mine_is_not_taken_for_a_certificate(tmp_path):
    target = tmp_path / "ca.crt"
    configure([{"ca": {"/etc/pki/webstack-ca/ca.crt": "<html>oops</html>"}}])
    assert state.ca_certificate(str(target), "ca", timeout=0.05, interval=0.01)["result"] is False
    assert not target.exists()


def test_test_mode_changes_nothing(tmp_path):
    target = tmp_path / "ca.crt"
    configure([{"ca": {"/x": PEM}}], test=True)
    ret = state.ca_certificate(str(target), "ca", timeout=1, interval=0.01)
    assert ret["result"] is None and not target.exists()


def test_virtual_needs_the_mine():
    state.__salt__ = {}
    assert state.__virtual__()[0] is False
    state.__salt__ = {"mine.get": mock.MagicMock()}
    assert state.__virtual__() == "webstack_pki"


def test_the_ca_reloads_its_signing_policies_without_reporting_a_change():
    refresh = mock.MagicMock(return_value=True)
    state.__salt__ = {
        "saltutil.refresh_pillar": refresh,
        "config.get": mock.MagicMock(return_value={"webstack-lb1": [], "webstack-app1": []}),
    }
    state.__opts__ = {"test": False}
    ret = state.signing_policies_loaded("lab")
    refresh.assert_called_once_with(wait=True)
    assert ret["result"] is True and ret["changes"] == {}
    assert ret["comment"] == "2 signing policies loaded"
    refresh.return_value = False
    assert state.signing_policies_loaded("lab")["result"] is False
    state.__opts__ = {"test": True}
    refresh.reset_mock()
    assert state.signing_policies_loaded("lab")["result"] is True
    refresh.assert_not_called()


def test_test_mode_does_not_wait_for_a_ca_that_has_not_published(tmp_path):
    target = tmp_path / "ca.crt"
    calls = configure([{}], test=True)
    ret = state.ca_certificate(str(target), "site-ca", timeout=300, interval=0.01)
    assert ret["result"] is None and ret["changes"] == {}
    assert "site-ca has not published" in ret["comment"] and "300s" in ret["comment"]
    assert len(calls) == 1  # asked once, not polled for the timeout
    assert not target.exists()


def test_test_mode_on_a_node_that_holds_the_certificate_is_clean(tmp_path):
    target = tmp_path / "ca.crt"
    target.write_text(PEM)
    configure([{"ca": {"/x": PEM}}], test=True)
    ret = state.ca_certificate(str(target), "ca", timeout=1, interval=0.01)
    assert ret["result"] is True and ret["changes"] == {}
