"""
This node's TLS certificates: whose they are, which names they carry, when they expire.

``webstack.backend_health`` reports them; ``salt-run webstack.status`` warns about any that
expires within :data:`WARN_DAYS` days (``state.apply`` reissues a node's certificate within
``pki.days_remaining`` days of its end, so a warning means the applies stopped).

Paths come from pillar ``webstack:lookup:pki`` over the state tree's defaults.
"""

import datetime
import logging
import os

log = logging.getLogger(__name__)

__virtualname__ = "webstack_pki"

#: Inside this many days of its end, a certificate is reported as expiring soon.
WARN_DAYS = 30

try:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - Salt's own venv has it
    HAS_CRYPTOGRAPHY = False


def __virtual__():
    if not HAS_CRYPTOGRAPHY:
        return (False, "webstack_pki: the cryptography library is not importable")
    if "webstack_config.lookup" not in __utils__:
        return (False, "webstack_pki: the webstack_config utils module is not synced")
    return __virtualname__


def _not_after(cert):
    # cryptography >= 42 has the aware datetime; older ones a naive one in UTC.
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=datetime.UTC)
    return value


def _names(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)] + [
        f"IP:{a}" for a in san.get_values_for_type(x509.IPAddress)
    ]


def describe(path, now=None, warn_days=WARN_DAYS):
    """
    One certificate file: ``{subject, issuer, names, not_after, days_left, expires_soon}``, or
    ``{error}`` when it is missing or not a PEM certificate.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_pki.describe /etc/webstack/pki/node.crt
    """
    now = now or datetime.datetime.now(datetime.UTC)
    try:
        with open(path, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError) as exc:
        return {"error": f"{path}: {exc}"}
    end = _not_after(cert)
    days_left = round((end - now).total_seconds() / 86400, 1)

    def common_name(name):
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return values[0].value if values else name.rfc4514_string()

    return {
        "subject": common_name(cert.subject),
        "issuer": common_name(cert.issuer),
        "names": _names(cert),
        "not_after": end.isoformat(),
        "days_left": days_left,
        "expires_soon": days_left < warn_days,
    }


def _paths():
    """The certificate files this node has: the node's and the CA's, the VIP's own (an lb
    with a site-brought certificate), the CA minion's CA."""
    lookup = __utils__["webstack_config.lookup"]
    candidates = {
        "node": lookup(__pillar__, "pki:cert"),
        "ca": lookup(__pillar__, "pki:ca_cert"),
        "vip": os.path.join(lookup(__pillar__, "lb:haproxy:tls:dir"), "vip.crt"),
        "site_ca": lookup(__pillar__, "pki:ca:cert"),
    }
    return {kind: path for kind, path in candidates.items() if os.path.exists(path)}


def certificates(warn_days=WARN_DAYS):
    """
    Every TLS certificate file of this node, by kind (``node``, ``ca``, ``vip``, ``site_ca``),
    each as :func:`describe` gives it with its ``path``; ``{}`` when the node has none yet.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_pki.certificates
    """
    found = {}
    for kind, path in _paths().items():
        found[kind] = dict(describe(path, warn_days=int(warn_days)), path=path)
    log.debug("webstack_pki: %d certificates", len(found))
    return found
