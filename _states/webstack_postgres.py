"""
PostgreSQL login roles whose password comes from pillar by key (the db role: the app's role).

- ``webstack_postgres.user_present``: a role that can log in, with the given attributes and the
  password held in pillar at ``password_pillar``; created, or its attributes or password reset,
  only when they differ.

The password is named, never given: it is in neither the rendered SLS (``state.show_sls``, the
job's arguments in the master's job cache) nor the state's return. It never leaves this process
either: PostgreSQL is sent its SCRAM-SHA-256 verifier (what it stores), computed here, and every
statement reaches ``psql`` on its standard input, not its command line, with Salt's command
logging off (``output_loglevel: quiet``).

.. code-block:: yaml

    app role:
      webstack_postgres.user_present:
        - name: webstack
        - password_pillar: webstack:secrets:db_password
"""

import base64
import hashlib
import hmac
import logging
import re
import secrets

import salt.utils.path
from salt.ext.saslprep import saslprep

log = logging.getLogger(__name__)

__virtualname__ = "webstack_postgres"

#: PostgreSQL's own default iteration count for SCRAM-SHA-256 verifiers.
SCRAM_ITERATIONS = 4096
_VERIFIER = re.compile(r"^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$")
#: The role attributes this state manages: argument -> (pg_authid column, SQL keyword).
_ATTRIBUTES = {
    "login": ("rolcanlogin", "LOGIN"),
    "superuser": ("rolsuper", "SUPERUSER"),
    "createdb": ("rolcreatedb", "CREATEDB"),
}


def __virtual__():
    if not salt.utils.path.which("psql"):
        return (False, "webstack_postgres states need psql (Debian package postgresql-client)")
    return __virtualname__


def scram_verifier(password, salt_bytes=None, iterations=SCRAM_ITERATIONS):
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677, as
    PostgreSQL's ``scram_build_secret``), with ``salt_bytes`` (random when None)."""
    salt_bytes = secrets.token_bytes(16) if salt_bytes is None else salt_bytes
    try:
        prepared = saslprep(password)
    except ValueError:  # as PostgreSQL: a password SASLprep refuses is used as it is
        prepared = password
    salted = hashlib.pbkdf2_hmac("sha256", prepared.encode(), salt_bytes, iterations)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    encoded = [base64.b64encode(part).decode() for part in (salt_bytes, stored, server)]
    return f"SCRAM-SHA-256${iterations}:{encoded[0]}${encoded[1]}:{encoded[2]}"


def logs_in(password, verifier):
    """Whether ``password`` matches a stored SCRAM-SHA-256 ``verifier`` (False for any other
    kind: md5, plain, none)."""
    match = _VERIFIER.match(verifier or "")
    if not match:
        return False
    try:
        salt_bytes = base64.b64decode(match.group(2), validate=True)
    except ValueError:
        return False
    expected = scram_verifier(password, salt_bytes=salt_bytes, iterations=int(match.group(1)))
    return hmac.compare_digest(expected, verifier)


def _literal(text):
    return "'" + text.replace("'", "''") + "'"


def _identifier(text):
    return '"' + text.replace('"', '""') + '"'


class _PsqlError(Exception):
    pass


def _psql(script, conn, hide=()):
    """Run ``script`` through psql on its stdin as the OS user ``conn["user"]``; its stdout.

    Errors come back with every string of ``hide`` blanked out (psql may quote the statement).
    """
    command = ["psql", "--no-psqlrc", "--no-align", "--tuples-only", "--quiet"]
    for option, key in (("--host", "db_host"), ("--port", "db_port"), ("--username", "db_user")):
        if conn.get(key):
            command.append(f"{option}={conn[key]}")
    command.append(f"--dbname={conn['maintenance_db']}")
    ret = __salt__["cmd.run_all"](
        command,
        stdin="\\set ON_ERROR_STOP on\n\\set VERBOSITY terse\n" + script,
        runas=conn["user"],
        python_shell=False,
        clean_env=True,
        reset_system_locale=False,
        output_loglevel="quiet",
        timeout=60,
    )
    if ret.get("retcode") != 0:
        message = (ret.get("stderr") or ret.get("stdout") or "").strip()
        for text in hide:
            message = message.replace(text, "<hidden>")
        raise _PsqlError(f"psql failed ({ret.get('retcode')}): {message}")
    return ret.get("stdout") or ""


def _current(name, conn):
    """``{attribute: bool, "verifier": str}`` of role ``name``, or None when there is none."""
    columns = ", ".join(column for column, _ in _ATTRIBUTES.values())
    # The one value in it is quoted as an SQL literal.
    where = f"WHERE rolname = {_literal(name)}"
    query = f"SELECT {columns}, coalesce(rolpassword, '') FROM pg_authid {where};\n"  # noqa: S608
    out = _psql(query, conn).strip()
    if not out:
        return None
    *flags, verifier = out.split("|", len(_ATTRIBUTES))
    role = {attr: flag == "t" for attr, flag in zip(_ATTRIBUTES, flags, strict=True)}
    role["verifier"] = verifier
    return role


def user_present(
    name,
    password_pillar,
    *,
    login=True,
    superuser=False,
    createdb=False,
    user="postgres",
    maintenance_db="postgres",
    db_host=None,
    db_port=None,
    db_user=None,
):
    """
    The PostgreSQL role ``name`` exists with the given attributes and a password, pillar key
    ``password_pillar`` (``a:b:c``), that logs in (a SCRAM-SHA-256 verifier). Created when
    missing; otherwise only what differs is changed (the password when it no longer logs in).

    name
        The role.
    password_pillar
        The pillar key holding its password; a missing or empty value fails the state.
    login, superuser, createdb
        The role's attributes (LOGIN, SUPERUSER, CREATEDB).
    user
        The OS user psql runs as (``postgres``: peer authentication on the local socket).
    maintenance_db, db_host, db_port, db_user
        Where psql connects (a socket directory or address for ``db_host``) and as which role;
        psql's defaults when not given.

    CLI Example:

    .. code-block:: bash

        salt db1 state.single webstack_postgres.user_present name=webstack \\
            password_pillar=webstack:secrets:db_password
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    password = __utils__["webstack_config.pillar"](__pillar__, password_pillar)
    if not isinstance(password, str) or not password:
        ret["comment"] = f"no password: pillar {password_pillar} is missing or empty"
        return ret
    wanted = {"login": bool(login), "superuser": bool(superuser), "createdb": bool(createdb)}
    conn = {
        "user": user,
        "maintenance_db": maintenance_db,
        "db_host": db_host,
        "db_port": db_port,
        "db_user": db_user,
    }
    log.debug("webstack_postgres.user_present %s: test=%s", name, __opts__["test"])
    try:
        current = _current(name, conn)
    except _PsqlError as exc:
        if __opts__["test"]:  # e.g. PostgreSQL not installed or not started yet
            ret["result"] = None
            ret["comment"] = f"role {name} would be made as wanted (cannot ask PostgreSQL: {exc})"
        else:
            ret["comment"] = f"role {name}: {exc}"
        return ret
    changes = _changes(current, wanted, password)
    if not changes:
        ret["result"] = True
        ret["comment"] = f"role {name} is as wanted; its password logs in"
        return ret
    what = "created" if current is None else "updated (" + ", ".join(sorted(changes)) + ")"
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = f"role {name} would be {what}"
        return ret
    verifier = scram_verifier(password) if "password" in changes else None
    try:
        _psql(_statement(name, current, wanted, verifier), conn, hide=[verifier] * bool(verifier))
    except _PsqlError as exc:
        ret["comment"] = f"role {name}: {exc}"
        return ret
    ret["result"] = True
    ret["changes"] = changes
    ret["comment"] = f"role {name} {what}"
    return ret


def _changes(current, wanted, password):
    """What differs, for the state's return (no secret in it)."""
    if current is None:
        return {"role": {"old": None, "new": "present"}, "password": {"old": None, "new": "set"}}
    changes = {
        attr: {"old": current[attr], "new": value}
        for attr, value in wanted.items()
        if current[attr] != value
    }
    if not logs_in(password, current["verifier"]):
        changes["password"] = {"old": "does not log in", "new": "reset"}
    return changes


def _statement(name, current, wanted, verifier):
    options = [word if wanted[attr] else "NO" + word for attr, (_, word) in _ATTRIBUTES.items()]
    if verifier:
        options.append("PASSWORD " + _literal(verifier))
    verb = "CREATE ROLE" if current is None else "ALTER ROLE"
    return f"{verb} {_identifier(name)} WITH {' '.join(options)};\n"
