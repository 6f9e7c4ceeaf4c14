"""
The node's TLS identity: the site CA's certificate, taken from the Salt mine where the CA minion
publishes it; the node's key; its certificate, issued by the CA minion.

Salt's own ``x509`` module makes the CA and signs every node's certificate (``ca_server`` +
``signing_policy``); what it leaves to the formula is getting the CA's certificate, public, to
every node. Salt's documented way is the mine (``x509.get_pem_entries`` on the CA minion). This
state waits for it there: on a first converge every minion applies at once, and the nodes must
not fail because the CA minion has not finished making the CA yet.

``signing_policies_loaded`` (on the CA minion) makes the minion's running process load its pillar
again: the CA signs with the policies of the pillar it holds in memory, which a state run's
fresh pillar does not replace; without it a node added to the topology would be refused until
the CA minion restarts.

``private_key_managed`` and ``certificate_managed`` check the node's key and certificate on the
node, and only when the check fails make a new key (``x509.create_private_key``) or have the CA
issue a new certificate (``x509.create_certificate`` with ``ca_server``), written here. Salt's
``x509.private_key_managed`` and ``x509.certificate_managed`` cost 0.3 s and 0.5 s of every run
even when nothing is to be done (a nested ``state.single``; a peer publish to the CA minion for
the node's policy), and each file they write goes through ``state.single``, which compiles the
minion's pillar on the master again. They still do the dry runs (the certificate's asks the CA
for the node's policy) and, with ``check_policy: true``, every run.

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

from salt.exceptions import CommandExecutionError, SaltInvocationError

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


def _write(name, text, mode, uid=-1, gid=-1):
    """Atomically: a reader sees the old file or the new one, never half of one. The new file is
    ``uid``:``gid`` with ``mode`` before a byte is written (a key is never readable by others,
    even for a moment; mkstemp makes it 0600)."""
    directory = os.path.dirname(name) or "."
    handle, path = tempfile.mkstemp(dir=directory, prefix=".webstack-pki.")
    try:
        os.fchown(handle, uid, gid)
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
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


def _ids(user, group):
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


def _set_owner(path, user, group, mode):
    uid, gid = _ids(user, group)
    os.chown(path, uid, gid)
    os.chmod(path, int(str(mode), 8))


def _written(name, pem, user, group, mode):
    """Write ``pem`` to ``name`` (owner and mode set first); the change to report."""
    existed = os.path.exists(name)
    uid, gid = _ids(user, group)
    _write(name, pem, int(str(mode), 8), uid, gid)
    return {"replaced" if existed else "created": name}


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


def _content_reasons(name, *, ca_cert, private_key, CN, alt_names, days_remaining):
    """Why the certificate at ``name`` is not this node's current one (empty: it is)."""
    cert, key, ca = _read(name), _read(private_key), _read(ca_cert)
    missing = [p for p, data in ((name, cert), (private_key, key), (ca_cert, ca)) if data is None]
    if missing:
        return [f"cannot read {', '.join(missing)}"]
    return __utils__["webstack_cert_check.stale_reasons"](
        cert, key, ca, cn=CN, names=alt_names, days_remaining=days_remaining
    )


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
    This node's certificate, issued by the CA minion ``ca_server`` under ``signing_policy`` when a
    check made here finds it not current (see ``_utils/webstack_cert_check.py``): signed by the
    site CA, for this node's key, CN and names, more than ``days_remaining`` days left. Then
    ``x509.create_certificate`` asks the CA (a peer publish) and the answer is written here, after
    it passes the same check. A dry run, and every run with ``check_policy: true``, is Salt's
    ``x509.certificate_managed``, which asks the CA for the node's policy.

    name
        The certificate file.
    ca_server, signing_policy
        The CA minion and the policy it signs this node's certificate under.
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
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    checks = {
        "ca_cert": ca_cert,
        "private_key": private_key,
        "CN": CN,
        "alt_names": alt_names,
        "days_remaining": days_remaining,
    }
    reasons = [] if check_policy else _content_reasons(name, **checks)
    if check_policy or (reasons and __opts__["test"]):
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
    if not reasons:
        return _owner_only(
            ret,
            name,
            (user, group, mode),
            "The certificate is current: signed by "
            f"the site CA, for this node's key and names, more than "
            f"{days_remaining} days left",
        )
    log.info("webstack_pki: %s is not current (%s): asking %s", name, "; ".join(reasons), ca_server)
    try:
        pem = __salt__["x509.create_certificate"](
            ca_server=ca_server,
            signing_policy=signing_policy,
            private_key=private_key,
            CN=CN,
            subjectAltName=", ".join(alt_names),
        )
    except (CommandExecutionError, SaltInvocationError) as exc:
        # A node new to the topology may ask before the CA minion loaded its policy: the SLS
        # retries a failed run.
        ret.update(result=False, comment=f"{ca_server} did not issue a certificate: {exc}")
        return ret
    issued = __utils__["webstack_cert_check.stale_reasons"](
        pem.encode("ascii"),
        _read(private_key),
        _read(ca_cert),
        cn=CN,
        names=alt_names,
        days_remaining=days_remaining,
    )
    if issued:
        ret.update(
            result=False,
            comment=f"{ca_server} issued a certificate under {signing_policy} that is not this "
            f"node's current one ({'; '.join(issued)}): not written. Does the CA minion's "
            "signing policy match the topology (salt-run webstack.status)?",
        )
        return ret
    ret["changes"] = _written(name, pem, user, group, mode) | {"because": "; ".join(reasons)}
    ret["comment"] = f"Issued by {ca_server} under {signing_policy}"
    return ret


def _owner_only(ret, name, owner, comment):
    """A current file: only its ``owner`` (user, group, mode) may need setting (a dry run says
    so)."""
    user, group, mode = owner
    if _owned_as(name, user, group, mode):
        ret["comment"] = comment
        return ret
    wanted = f"{user}:{group} {mode}"
    if __opts__["test"]:
        ret.update(result=None, comment=f"{comment}; would be made {wanted}")
        ret["changes"] = {"owner_mode": wanted}
        return ret
    _set_owner(name, user, group, mode)
    ret["changes"] = {"owner_mode": wanted}
    ret["comment"] = f"{comment}; made {wanted}"
    return ret


def private_key_managed(  # noqa: PLR0917 (Salt passes a state's arguments by position)
    name, algo="ec", keysize=256, user="root", group="root", mode="0600"
):
    """
    This node's private key at ``name``: readable, unencrypted, ``algo`` (``ec``, ``rsa``) of
    ``keysize`` bits, owned ``user``:``group`` with ``mode``. Made here
    (``x509.create_private_key``) when it is not; a key that only has the wrong owner or mode is
    kept and set right.

    name
        The key file.
    algo, keysize
        The key's algorithm and size in bits.
    user, group, mode
        The file's owner and mode.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    key = _read(name)
    if key is None:
        reasons = [f"cannot read {name}"]
    else:
        reasons = __utils__["webstack_cert_check.key_reasons"](key, algo=algo, keysize=keysize)
    if not reasons:
        return _owner_only(
            ret, name, (user, group, mode), f"The private key is current: {algo}, {keysize} bits"
        )
    log.info("webstack_pki: %s is not current (%s)", name, "; ".join(reasons))
    if __opts__["test"]:
        action = "replaced" if key is not None else "created"
        ret.update(result=None, comment=f"The private key would be {action}: {'; '.join(reasons)}")
        ret["changes"] = {action: name}
        return ret
    pem = __salt__["x509.create_private_key"](algo=algo, keysize=keysize)
    ret["changes"] = _written(name, pem, user, group, mode) | {"because": "; ".join(reasons)}
    ret["comment"] = f"A new {algo} private key of {keysize} bits"
    return ret
