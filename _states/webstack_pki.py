"""
The site CA's certificate on a node, taken from the Salt mine where the CA minion publishes it.

Salt's own ``x509`` states make the CA and issue every node's certificate (``ca_server`` +
``signing_policy``); what they leave to the formula is getting the CA's certificate, public, to
every node. Salt's documented way is the mine (``x509.get_pem_entries`` on the CA minion). This
state waits for it there: on a first converge every minion applies at once, and the nodes must
not fail because the CA minion has not finished making the CA yet.

``signing_policies_loaded`` (on the CA minion) makes the minion's running process load its pillar
again: the CA signs with the policies of the pillar it holds in memory, which a state run's
fresh pillar does not replace; without it a node added to the topology would be refused until
the CA minion restarts.

``private_key_managed`` and ``certificate_managed`` put a check made on the node in front of
Salt's ``x509.private_key_managed`` and ``x509.certificate_managed``, which run only when it
fails: those two cost 0.3 s and 0.5 s of every run even when nothing is to be done (a nested
``state.single``; a peer publish to the CA minion for the node's policy).

.. code-block:: yaml

    site CA certificate:
      webstack_pki.ca_certificate:
        - name: /etc/webstack/pki/ca.crt
        - ca_server: ca
        - mine_function: webstack_ca
        - timeout: 300
"""

import grp
import logging
import os
import pwd
import stat
import tempfile

log = logging.getLogger(__name__)

__virtualname__ = "webstack_pki"

_PEM_HEAD = "-----BEGIN CERTIFICATE-----"


def __virtual__():
    if "mine.get" not in __salt__:
        return (False, "webstack_pki: the mine execution module is not available")
    return __virtualname__


def _published(ca_server, mine_function):
    """The PEM the CA minion published, or None (not published yet, or not one certificate)."""
    data = __salt__["mine.get"](ca_server, mine_function)
    entries = data.get(ca_server) if isinstance(data, dict) else None
    if not isinstance(entries, dict) or len(entries) != 1:
        return None
    pem = next(iter(entries.values()))
    if isinstance(pem, bytes):
        pem = pem.decode("ascii", "replace")
    if not isinstance(pem, str) or not pem.strip().startswith(_PEM_HEAD):
        return None
    return pem.strip() + "\n"


def _current(name):
    try:
        with open(name, encoding="ascii") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def _write(name, text, mode):
    """Atomically: a reader sees the old certificate or the new one, never half of one."""
    directory = os.path.dirname(name) or "."
    handle, path = tempfile.mkstemp(dir=directory, prefix=".ca.")
    try:
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(text)
        os.chmod(path, mode)
        os.replace(path, name)
    except BaseException:
        if os.path.exists(path):
            os.unlink(path)
        raise


def _dry_run(ret, name, pem, ca_server, timeout):
    if pem and _current(name) == pem:
        ret.update(result=True, comment=f"{name} holds the site CA's certificate")
    elif pem:
        ret.update(result=None, comment=f"{name} would be written", changes={"new": name})
    else:
        ret.update(
            result=None,
            comment=(
                f"{ca_server} has not published the site CA's certificate yet: a real run waits "
                f"up to {timeout}s for it, then writes {name}"
            ),
        )
    return ret


def ca_certificate(name, ca_server, mine_function="webstack_ca", timeout=300, interval=2):
    """
    Write the site CA's certificate, as the CA minion ``ca_server`` publishes it in the mine
    under ``mine_function``, to ``name`` (root-owned, ``mode``). Waits up to ``timeout`` seconds
    for it to be published.

    name
        The file to write, e.g. ``/etc/webstack/pki/ca.crt``.
    ca_server
        The CA minion's id.
    mine_function
        The mine alias the CA minion publishes its certificate under (one PEM entry).
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    if __opts__["test"]:
        # A dry run changes nothing, so there is nothing to wait for: say what a real run does.
        return _dry_run(ret, name, _published(ca_server, mine_function), ca_server, timeout)
    pem = None
    for waited in __utils__["webstack_poll.until"](timeout, interval):
        pem = _published(ca_server, mine_function)
        if pem:
            log.debug("webstack_pki: CA certificate found in the mine after %ss", waited)
            break
    if not pem:
        ret["comment"] = (
            f"the site CA's certificate is not in the mine after {timeout}s: has {ca_server} "
            f"applied webstack.pki.ca (salt {ca_server} state.apply) and published "
            f"{mine_function} (mine.update)?"
        )
        return ret
    if _current(name) == pem:
        ret.update(result=True, comment=f"{name} holds the site CA's certificate")
        return ret
    _write(name, pem, 0o644)
    ret.update(result=True, comment=f"{name}: the site CA's certificate written")
    ret["changes"] = {"new": name}
    return ret


def signing_policies_loaded(name):
    """
    Load this (CA) minion's pillar into its running process, so that the x509 signing policies
    it signs with are the topology's current ones (one per node). Changes nothing on the system:
    reported as no change.

    name
        A label (the topology's name).
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__["test"]:
        ret["comment"] = "the signing policies would be reloaded from pillar"
        return ret
    if not __salt__["saltutil.refresh_pillar"](wait=True):
        ret.update(result=False, comment="saltutil.refresh_pillar did not complete")
        return ret
    policies = __salt__["config.get"]("x509_signing_policies", {})
    ret["comment"] = f"{len(policies)} signing policies loaded"
    return ret


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _owned_as(path, user, group, mode):
    """Whether ``path`` is ``user``:``group`` with ``mode``, as the x509 state would leave it."""
    try:
        info = os.stat(path)
        return (
            info.st_uid == pwd.getpwnam(user).pw_uid
            and info.st_gid == grp.getgrnam(group).gr_gid
            and stat.S_IMODE(info.st_mode) == int(str(mode), 8)
        )
    except (OSError, KeyError, ValueError):
        return False


def _local_reasons(name, *, ca_cert, private_key, CN, alt_names, days_remaining, user, group, mode):
    cert, key, ca = _read(name), _read(private_key), _read(ca_cert)
    missing = [p for p, data in ((name, cert), (private_key, key), (ca_cert, ca)) if data is None]
    if missing:
        return [f"cannot read {', '.join(missing)}"]
    reasons = __utils__["webstack_cert_check.stale_reasons"](
        cert, key, ca, cn=CN, names=alt_names, days_remaining=days_remaining
    )
    if not _owned_as(name, user, group, mode):
        reasons.append(f"not {user}:{group} {mode}")
    return reasons


# Salt passes a state's arguments by position (salt.utils.args.format_call).
def certificate_managed(  # noqa: PLR0917
    name,
    ca_server,
    signing_policy,
    private_key,
    CN,
    alt_names,
    ca_cert,
    days_remaining=30,
    user="root",
    group="root",
    mode="0644",
    check_policy=False,
):
    """
    Salt's ``x509.certificate_managed`` (issued by ``ca_server`` under ``signing_policy``), run
    only when this node's certificate is not current by a check made here alone (see
    ``_utils/webstack_cert_check.py``): the x509 state asks the CA minion for the policy on every
    run, a peer publish through the master (0.5 s of an idempotent apply, and one master job per
    minion). ``check_policy: true`` asks the CA every run, as the x509 state does.

    name
        The certificate file.
    ca_server, signing_policy
        Passed to ``x509.certificate_managed``.
    private_key
        This node's private key (the certificate's public key must be its).
    CN, alt_names
        The subject's CN and its subjectAltName entries (``["DNS:app1", "IP:10.77.0.21"]``).
    ca_cert
        The site CA's certificate (it must have signed the certificate).
    days_remaining
        Reissue when fewer days are left.
    user, group, mode
        The file's owner and mode.
    """
    if not check_policy:
        reasons = _local_reasons(
            name,
            ca_cert=ca_cert,
            private_key=private_key,
            CN=CN,
            alt_names=alt_names,
            days_remaining=days_remaining,
            user=user,
            group=group,
            mode=mode,
        )
        if not reasons:
            return {
                "name": name,
                "result": True,
                "changes": {},
                "comment": "The certificate is current: signed by the site CA, for this node's "
                f"key and names, more than {days_remaining} days left",
            }
        log.info(
            "webstack_pki: %s is not current (%s): asking %s", name, "; ".join(reasons), ca_server
        )
    return __states__["x509.certificate_managed"](
        name=name,
        ca_server=ca_server,
        signing_policy=signing_policy,
        private_key=private_key,
        CN=CN,
        subjectAltName=", ".join(alt_names),
        days_remaining=days_remaining,
        user=user,
        group=group,
        mode=mode,
    )


def private_key_managed(  # noqa: PLR0917 (Salt passes a state's arguments by position)
    name, algo="ec", keysize=256, user="root", group="root", mode="0600"
):
    """
    Salt's ``x509.private_key_managed``, run only when the key at ``name`` is not as wanted by a
    check made here: readable, unencrypted, ``algo`` (``ec``, ``rsa``) of ``keysize`` bits, owned
    ``user``:``group`` with ``mode``. The x509 state costs 0.3 s of every run even then (it checks
    the file through ``state.single``, a new state run with freshly loaded modules).

    name
        The key file.
    algo, keysize
        Passed to ``x509.private_key_managed``.
    user, group, mode
        The file's owner and mode.
    """
    key = _read(name)
    if key is None:
        reasons = [f"cannot read {name}"]
    else:
        reasons = __utils__["webstack_cert_check.key_reasons"](key, algo=algo, keysize=keysize)
        if not _owned_as(name, user, group, mode):
            reasons.append(f"not {user}:{group} {mode}")
    if not reasons:
        return {
            "name": name,
            "result": True,
            "changes": {},
            "comment": f"The private key is current: {algo}, {keysize} bits, {user}:{group} {mode}",
        }
    log.info("webstack_pki: %s is not current (%s)", name, "; ".join(reasons))
    return __states__["x509.private_key_managed"](
        name=name, algo=algo, keysize=keysize, user=user, group=group, mode=mode
    )
