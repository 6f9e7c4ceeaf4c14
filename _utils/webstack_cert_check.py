"""
Whether a node's certificate is still the one the site CA would issue it, and its private key the
one the key state makes, checked on the node alone.

Salt's ``x509.certificate_managed`` with ``ca_server`` asks the CA minion for the node's signing
policy on every state run (a peer publish through the master: 0.5 s of each idempotent apply
here, and one master job per minion per run). Everything that policy fixes for a node is known
on the node too: the site CA (its certificate), the names (from the topology), the key (its
own), and the extensions, which are the same for every node (``pillar/webstack/ca.sls``; the
unit tests issue a certificate from that very policy and check it here). When this check finds
nothing, the certificate is current; otherwise the x509 state runs and asks the CA. (Salt's
``x509.private_key_managed`` costs 0.3 s even when the key is as wanted: it runs its file checks
through ``state.single``, a new state run with freshly loaded modules.)

Uses ``cryptography``, which Salt's x509 modules need too.
"""

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _load(loader, pem, what):
    try:
        return loader(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} is not PEM: {exc}") from exc


def _load_key(key_pem):
    """The unencrypted private key ``key_pem`` (ValueError naming it when it is not one)."""
    return _load(
        lambda data: serialization.load_pem_private_key(data, password=None),
        key_pem,
        "the private key",
    )


def _spki(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _names(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)} | {
        f"IP:{a}" for a in san.get_values_for_type(x509.IPAddress)
    }


def _extension(cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def _policy_reasons(cert):
    """What differs from the site policy's fixed extensions (pillar/webstack/ca.sls)."""
    reasons = []
    basic = _extension(cert, x509.BasicConstraints)
    if basic is None or not basic.critical or basic.value.ca:
        reasons.append("basicConstraints is not critical, CA:false")
    usage = _extension(cert, x509.KeyUsage)
    if (
        usage is None
        or not usage.critical
        or not usage.value.digital_signature
        or not usage.value.key_encipherment
    ):
        reasons.append("keyUsage is not critical, digitalSignature, keyEncipherment")
    eku = _extension(cert, x509.ExtendedKeyUsage)
    wanted = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    if eku is None or set(eku.value) != wanted:
        reasons.append("extendedKeyUsage is not serverAuth, clientAuth")
    return reasons


def stale_reasons(cert_pem, key_pem, ca_pem, *, cn, names, days_remaining, now=None):
    """
    Why the certificate ``cert_pem`` is not the current one for this node (an empty list: it
    is): not signed by the CA ``ca_pem``, not for the private key ``key_pem``, another CN or set
    of names (``["DNS:app1", "IP:10.77.0.21"]``), another policy, or fewer than
    ``days_remaining`` days left.
    """
    try:
        cert = _load(x509.load_pem_x509_certificate, cert_pem, "the certificate")
        ca = _load(x509.load_pem_x509_certificate, ca_pem, "the CA certificate")
        key = _load_key(key_pem)
    except ValueError as exc:
        return [str(exc)]
    reasons = []
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError) as exc:  # InvalidSignature: no message
        reasons.append(f"not signed by the site CA ({type(exc).__name__})")
    if _spki(cert.public_key()) != _spki(key.public_key()):
        reasons.append("not for this node's private key")
    got_cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if got_cn != [cn]:
        reasons.append(f"CN is {got_cn}, not {cn!r}")
    got_names = _names(cert)
    if got_names != set(names):
        reasons.append(f"names are {sorted(got_names)}, not {sorted(set(names))}")
    reasons += _policy_reasons(cert)
    now = now or datetime.datetime.now(datetime.UTC)
    if cert.not_valid_before_utc > now:
        reasons.append(f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    left = cert.not_valid_after_utc - now
    if left < datetime.timedelta(days=days_remaining):
        reasons.append(f"{max(left.days, 0)} days left, fewer than {days_remaining}")
    return reasons


def key_reasons(key_pem, *, algo, keysize):
    """
    Why the private key ``key_pem`` is not the one the node's key state makes (an empty list: it
    is): not PEM or encrypted, another algorithm (``ec``, ``rsa``) or size (EC: the curve's
    bits, 256 for P-256).
    """
    try:
        key = _load_key(key_pem)
    except ValueError as exc:
        return [str(exc)]
    kinds = {"ec": ec.EllipticCurvePrivateKey, "rsa": rsa.RSAPrivateKey}
    if algo not in kinds:
        return [f"algorithm {algo!r} is not checked here (ec, rsa)"]
    if not isinstance(key, kinds[algo]):
        return [f"not an {algo} key ({type(key).__name__})"]
    if key.key_size != int(keysize):
        return [f"{key.key_size} bits, not {keysize}"]
    return []
