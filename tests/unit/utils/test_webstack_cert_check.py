"""
Unit tests of _utils/webstack_cert_check.py on real certificates (made here with
``cryptography``): one issued as the site policy issues them (pillar/webstack/ca.sls: CA:false,
digitalSignature + keyEncipherment, serverAuth + clientAuth) is current; each way of differing
from it is named.
"""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from support.policy_certs import NOW
from support.policy_certs import issue as _issue
from support.policy_certs import make_ca as _ca
from support.policy_certs import pem as _pem
from support.salt_modules import load

check = load("_utils", "webstack_cert_check")

NAMES = ["DNS:app1", "IP:10.77.0.21"]


@pytest.fixture(scope="module")
def site():
    ca = _ca()
    key = ec.generate_private_key(ec.SECP256R1())
    return ca, key


def reasons(site, cert, *, key=None, ca_cert=None, names=NAMES, days_remaining=30):
    ca, own_key = site
    return check.stale_reasons(
        _pem(cert),
        _pem(key or own_key),
        _pem(ca_cert or ca[1]),
        cn="app1",
        names=names,
        days_remaining=days_remaining,
        now=NOW,
    )


def test_a_certificate_as_the_site_policy_issues_it_is_current(site):
    ca, key = site
    assert reasons(site, _issue(ca, key)) == []


def test_another_issuer_with_the_same_name_is_refused(site):
    _, key = site
    impostor = _ca()  # the same subject as the site CA, another key
    got = reasons(site, _issue(impostor, key))
    assert got == ["not signed by the site CA (InvalidSignature)"]


def test_another_key_cn_or_names_are_each_named(site):
    ca, key = site
    other = ec.generate_private_key(ec.SECP256R1())
    assert reasons(site, _issue(ca, other)) == ["not for this node's private key"]
    assert reasons(site, _issue(ca, key, cn="app2")) == ["CN is ['app2'], not 'app1'"]
    got = reasons(site, _issue(ca, key, ip="10.77.0.22"))
    assert got == ["names are ['DNS:app1', 'IP:10.77.0.22'], not ['DNS:app1', 'IP:10.77.0.21']"]
    # A topology that adds a name makes the certificate stale too.
    assert reasons(site, _issue(ca, key), names=[*NAMES, "DNS:localhost"])


def test_another_policy_is_named(site):
    ca, key = site
    assert reasons(site, _issue(ca, key, is_ca=True)) == [
        "basicConstraints is not critical, CA:false"
    ]
    assert reasons(site, _issue(ca, key, eku=[ExtendedKeyUsageOID.SERVER_AUTH])) == [
        "extendedKeyUsage is not serverAuth, clientAuth"
    ]


def test_fewer_days_left_than_days_remaining_is_stale(site):
    ca, key = site
    assert reasons(site, _issue(ca, key, days=29)) == ["29 days left, fewer than 30"]
    assert reasons(site, _issue(ca, key, days=31)) == []


def test_what_is_not_pem_is_named(site):
    ca, key = site
    cert = _pem(_issue(ca, key))

    def only(cert_pem, key_pem):
        got = check.stale_reasons(
            cert_pem, key_pem, _pem(ca[1]), cn="app1", names=NAMES, days_remaining=30, now=NOW
        )
        assert len(got) == 1, got
        return got[0]

    assert only(b"garbage", _pem(key)).startswith("the certificate is not PEM: ")
    assert only(cert, b"garbage").startswith("the private key is not PEM: ")


def test_the_key_as_the_key_state_makes_it_is_current_and_others_are_named(site):
    _, key = site
    assert check.key_reasons(_pem(key), algo="ec", keysize=256) == []
    assert check.key_reasons(_pem(key), algo="ec", keysize=384) == ["256 bits, not 384"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert check.key_reasons(_pem(other), algo="ec", keysize=256) == [
        "not an ec key (RSAPrivateKey)"
    ]
    assert check.key_reasons(_pem(other), algo="rsa", keysize=2048) == []
    assert check.key_reasons(b"garbage", algo="ec", keysize=256)[0].startswith(
        "the private key is not PEM: "
    )
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert check.key_reasons(encrypted, algo="ec", keysize=256)[0].startswith(
        "the private key is not PEM: "
    )
