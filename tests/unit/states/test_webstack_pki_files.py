"""Unit tests of _states/webstack_pki.py's key and certificate states on real keys and certificates
(``cryptography``): what they make and write when the node's check fails, what they keep, and
what they refuse. Salt's x509 execution functions are stand-ins here that make the same objects
(a key; a certificate signed by a test CA as the site policy signs); the lab's e2e tests run the
real ones against the real CA minion."""

import grp
import os
import pwd
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from salt.exceptions import CommandExecutionError
from support.policy_certs import issue, make_ca, pem
from support.salt_modules import UTILS, load

state = load("_states", "webstack_pki")

USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
NAMES = ["DNS:app1", "IP:10.77.0.21"]


class Ca:
    """``x509.create_certificate`` with ``ca_server``: signs for the key at ``private_key``,
    with the names asked for unless ``names`` says otherwise; or raises ``error``."""

    def __init__(self):
        self.site = make_ca()
        self.calls = []
        self.names = None
        self.error = None

    def create_certificate(self, **kwargs):
        self.calls.append(kwargs)
        if self.error:
            raise self.error
        with open(kwargs["private_key"], "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), None)
        dns, ip = self.names or [n.split(":", 1)[1] for n in kwargs["subjectAltName"].split(", ")]
        return pem(issue(self.site, key, cn=kwargs["CN"], dns=dns, ip=ip)).decode()


@pytest.fixture
def node(tmp_path):
    ca = Ca()
    (tmp_path / "ca.crt").write_bytes(pem(ca.site[1]))
    delegated = []
    state.__salt__ = {
        "x509.create_private_key": lambda algo, keysize: pem(
            ec.generate_private_key(ec.SECP256R1())
        ).decode(),
        "x509.create_certificate": ca.create_certificate,
    }
    state.__utils__ = UTILS
    state.__opts__ = {"test": False}
    state.__states__ = {
        "x509.certificate_managed": lambda **kw: delegated.append(kw) or {"result": None}
    }
    ca.delegated = delegated
    ca.dir = tmp_path
    return ca


def key_state(path, mode="0640"):
    return state.private_key_managed(str(path), "ec", 256, USER, GROUP, mode)


def cert_state(node, check_policy=False):
    return state.certificate_managed(
        str(node.dir / "node.crt"),
        "ca",
        "webstack-app1",
        str(node.dir / "node.key"),
        "app1",
        NAMES,
        str(node.dir / "ca.crt"),
        30,
        USER,
        GROUP,
        "0644",
        check_policy,
    )


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_missing_key_is_made_with_its_mode_then_kept(node):
    path = node.dir / "node.key"
    made = key_state(path)
    assert made["result"] is True and made["changes"]["created"] == str(path), made
    assert mode_of(path) == 0o640
    first = path.read_bytes()
    again = key_state(path)
    assert again["changes"] == {} and again["comment"].startswith("The private key is current")
    assert path.read_bytes() == first


def test_a_key_with_the_wrong_mode_is_kept_and_its_mode_set(node):
    path = node.dir / "node.key"
    key_state(path)
    first = path.read_bytes()
    path.chmod(0o644)
    fixed = key_state(path)
    assert fixed["changes"] == {"owner_mode": f"{USER}:{GROUP} 0640"}, fixed
    assert path.read_bytes() == first and mode_of(path) == 0o640


def test_a_key_of_another_kind_is_replaced_and_a_dry_run_writes_nothing(node):
    path = node.dir / "node.key"
    path.write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    old = path.read_bytes()
    state.__opts__["test"] = True
    dry = key_state(path)
    assert dry["result"] is None and dry["changes"] == {"replaced": str(path)}, dry
    assert path.read_bytes() == old
    state.__opts__["test"] = False
    replaced = key_state(path)
    assert replaced["changes"]["replaced"] == str(path), replaced
    assert path.read_bytes() != old


def test_a_missing_certificate_is_issued_by_the_ca_and_then_current(node):
    key_state(node.dir / "node.key")
    issued = cert_state(node)
    assert issued["result"] is True, issued
    assert issued["changes"]["created"] == str(node.dir / "node.crt")
    (call,) = node.calls
    assert call["ca_server"] == "ca" and call["signing_policy"] == "webstack-app1"
    assert call["CN"] == "app1" and call["subjectAltName"] == "DNS:app1, IP:10.77.0.21"
    assert mode_of(node.dir / "node.crt") == 0o644
    again = cert_state(node)
    assert again["changes"] == {} and again["comment"].startswith("The certificate is current")
    assert len(node.calls) == 1  # the CA is not asked again


def test_a_new_key_makes_the_certificate_reissued(node):
    key_state(node.dir / "node.key")
    cert_state(node)
    (node.dir / "node.key").unlink()
    key_state(node.dir / "node.key")
    reissued = cert_state(node)
    assert reissued["changes"]["replaced"] == str(node.dir / "node.crt"), reissued
    assert "key" in reissued["changes"]["because"]


def test_a_certificate_the_ca_issues_for_other_names_is_not_written(node):
    key_state(node.dir / "node.key")
    node.names = ("app9", "10.77.0.99")
    refused = cert_state(node)
    assert refused["result"] is False, refused
    assert "not this node's current one" in refused["comment"]
    assert not (node.dir / "node.crt").exists()


def test_a_ca_that_refuses_fails_the_state_and_writes_nothing(node):
    key_state(node.dir / "node.key")
    node.error = CommandExecutionError("no signing policy webstack-app1")
    refused = cert_state(node)
    assert refused["result"] is False and "ca did not issue" in refused["comment"], refused
    assert "no signing policy" in refused["comment"]
    assert not (node.dir / "node.crt").exists()


def test_a_dry_run_of_a_stale_certificate_and_check_policy_are_salts_x509_state(node):
    key_state(node.dir / "node.key")
    state.__opts__["test"] = True
    cert_state(node)
    state.__opts__["test"] = False
    cert_state(node, check_policy=True)
    assert [d["signing_policy"] for d in node.delegated] == ["webstack-app1"] * 2
    assert node.calls == [] and not (node.dir / "node.crt").exists()
