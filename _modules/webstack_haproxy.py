"""
haproxy on an lb node, through its runtime API (the admin socket), with the standard library
only: the servers it knows, their admin state (``ready``, ``drain``, ``maint``) and the
server-state file that keeps drain/maint across a reload.

The socket and the file come from pillar ``webstack:lookup:lb:haproxy`` (defaults:
``salt/webstack/parameters/defaults.yaml``); every function takes ``socket=``/``state_file=``
overrides. The client and its parsers are ``_utils/webstack_haproxy_api.py``.
``webstack.server_state`` (state) and the rolling deploy use ``set_server_state`` and
``wait_server``; ``webstack.backend_health`` reports ``health``.
"""

import logging
import os
import socket as _socket
import tempfile
import time

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "webstack_haproxy"

BACKEND = "app"
SERVER_STATES = ("ready", "drain", "maint")


def __virtual__():
    if not hasattr(_socket, "AF_UNIX"):
        return (False, "webstack_haproxy: haproxy's admin socket is a unix socket (none here)")
    if "webstack_haproxy_api.command" not in __utils__:
        return (False, "webstack_haproxy: the webstack_haproxy_api utils module is not synced")
    return __virtualname__


def _api(name):
    return __utils__[f"webstack_haproxy_api.{name}"]


def _socket_path(socket):
    return socket or __utils__["webstack_config.lookup"](__pillar__, "lb:haproxy:admin_socket")


def _state_path(state_file):
    return state_file or __utils__["webstack_config.lookup"](
        __pillar__, "lb:haproxy:server_state_file"
    )


def parse_stat_csv(text):
    """
    Parse the output of haproxy's ``show stat``: one dict per line, keyed by the CSV header.

    The header (first line, ``# pxname,svname,...``) names the columns, so the column order and
    the number of columns of a given haproxy version do not matter.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_haproxy.parse_stat_csv "$(cat show-stat.csv)"
    """
    return _api("parse_stat_csv")(text)


def parse_servers_state(text):
    """
    Parse haproxy's ``show servers state`` (also the server-state file's format): one dict per
    server, keyed by the ``# be_id be_name ...`` header, with the admin/operational codes decoded
    into ``admin_state`` (ready, drain, maint), ``op_state`` and ``check_result``.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_haproxy.parse_servers_state "$(cat /var/lib/haproxy/server-state)"
    """
    return _api("parse_servers_state")(text)


def haproxy_command(command, socket=None, timeout=5.0):
    """
    Send one command to haproxy's runtime API (the admin socket) and return its raw answer.

    command
        e.g. ``show info``, ``show stat``, ``show servers state app``.
    socket
        The admin socket (default: ``webstack:lookup:lb:haproxy:admin_socket``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_haproxy.haproxy_command "show info"
    """
    return _api("command")(_socket_path(socket), command, timeout)


def haproxy_servers(backend=None, socket=None):
    """
    The servers haproxy knows, from ``show servers state`` and ``show stat``:
    ``{backend: {server: {status, admin_state, op_state, check_status, weight, sessions, ...}}}``.

    backend
        Only this backend (default: all).
    socket
        The admin socket (default: ``webstack:lookup:lb:haproxy:admin_socket``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_haproxy.haproxy_servers backend=app
    """
    if backend is not None and not _api("valid_name")(backend):
        raise CommandExecutionError(f"backend: {backend!r} is not a valid haproxy backend name")
    answer = haproxy_command("show servers state" + (f" {backend}" if backend else ""), socket)
    if not answer.lstrip().startswith("1"):
        raise CommandExecutionError(f"haproxy 'show servers state': {answer.strip()}")
    return _api("merge_servers")(answer, parse_stat_csv(haproxy_command("show stat", socket)))


def health(socket=None):
    """
    The lb's health: every haproxy frontend and backend with its servers (status, check, admin
    state, weight, sessions) from ``show stat`` and ``show servers state``, ``healthy`` and the
    ``problems`` (a frontend not OPEN, a backend with no server in service).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_haproxy.health
    """
    path = _socket_path(socket)
    rows = parse_stat_csv(haproxy_command("show stat", path))
    view = _api("health")(rows, haproxy_command("show servers state", path))
    log.debug("webstack_haproxy: %s: healthy=%s %s", path, view["healthy"], view["problems"])
    return {"socket": path, **view}


def request_log(lines=100, request_id=None, socket=None):
    """
    The newest request log lines, oldest first, from the in-memory ring haproxy writes them to
    (``webstack:lookup:lb:haproxy:request_log:ring``; the journal gets only haproxy's events).
    Each line ends with the request's id, the ``X-Request-ID`` the client and the app saw.

    lines
        How many of the newest lines (1 to 100000).
    request_id
        Only the line(s) of this request id.
    socket
        The admin socket (default: ``webstack:lookup:lb:haproxy:admin_socket``).

    CLI Example:

    .. code-block:: bash

        salt lb1 webstack_haproxy.request_log lines=20
        salt 'lb*' webstack_haproxy.request_log request_id=0A4D9B2C...
    """
    if isinstance(lines, bool) or not isinstance(lines, int) or not 1 <= lines <= 100000:
        raise CommandExecutionError(f"lines: {lines!r} is not a whole number from 1 to 100000")
    if request_id is not None and not _api("valid_request_id")(str(request_id)):
        raise CommandExecutionError(
            f"request_id: {request_id!r} is not a request id (1-128 of A-Z a-z 0-9 . _ : -)"
        )
    ring = __utils__["webstack_config.lookup"](__pillar__, "lb:haproxy:request_log:ring")
    answer = haproxy_command(f"show events {ring}", socket, timeout=10.0)
    return _api("request_lines")(answer, lines, None if request_id is None else str(request_id))


def _write_atomically(path, text):
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise CommandExecutionError(f"server-state file {path}: directory {directory} is missing")
    fd, tmp = tempfile.mkstemp(prefix=".server-state.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise CommandExecutionError(f"cannot write server-state file {path}: {exc}") from exc


def save_server_state(socket=None, state_file=None):
    """
    Write haproxy's ``show servers state`` to the server-state file (atomically), so that the
    next reload (``load-server-state-from-file global``) keeps every server's drain/maint state.

    socket
        The admin socket (default: ``webstack:lookup:lb:haproxy:admin_socket``).
    state_file
        Default: ``webstack:lookup:lb:haproxy:server_state_file``.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_haproxy.save_server_state
    """
    path = _state_path(state_file)
    answer = haproxy_command("show servers state", socket)
    parse_servers_state(answer)  # refuse to write anything haproxy could not load back
    _write_atomically(path, answer.rstrip("\n") + "\n")
    log.debug("webstack_haproxy: saved the servers' state to %s", path)
    return path


def saved_server_state(server, backend=BACKEND, state_file=None):
    """
    The admin state (ready, drain, maint) the server-state file records for one server, or
    ``None`` when the file or the server is missing from it (an unreadable file is logged).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_haproxy.saved_server_state app1
    """
    path = _state_path(state_file)
    try:
        with open(path, encoding="utf-8") as handle:
            servers = parse_servers_state(handle.read())
    except FileNotFoundError:
        log.debug("webstack_haproxy: no server-state file %s", path)
        return None
    except (OSError, CommandExecutionError) as exc:
        log.warning("webstack: cannot read server-state file %s: %s", path, exc)
        return None
    for entry in servers:
        if entry.get("be_name") == backend and entry.get("srv_name") == server:
            return entry["admin_state"]
    return None


def _check_names(state, server, backend):
    if state not in SERVER_STATES:
        raise CommandExecutionError(f"state: {state!r} is not one of {', '.join(SERVER_STATES)}")
    for key, value in (("server", server), ("backend", backend)):
        if not _api("valid_name")(value):
            raise CommandExecutionError(f"{key}: {value!r} is not a valid haproxy name")


def set_server_state(
    server,
    state,
    *,
    backend=BACKEND,
    socket=None,
    state_file=None,
    wait=0,
):
    """
    Set one haproxy server's admin state (``ready``, ``drain`` or ``maint``) through the runtime
    API, check that haproxy applied it, and save the server-state file so it survives a reload.

    server
        The server name (the app node's name).
    state
        ``ready``, ``drain`` or ``maint``.
    backend
        Default ``app``.
    wait
        With ``drain``/``maint``: wait up to this many seconds for the server's sessions to end.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_haproxy.set_server_state app1 drain wait=30
    """
    _check_names(state, server, backend)
    before = _one_server(server, backend, socket)
    if before["admin_state"] != state:
        log.debug("webstack_haproxy: %s/%s %s -> %s", backend, server, before["admin_state"], state)
        error = _api("answer_error")(
            haproxy_command(f"set server {backend}/{server} state {state}", socket)
        )
        if error:
            raise CommandExecutionError(
                f"haproxy refused 'set server {backend}/{server} state {state}': {error}"
            )
    after = _one_server(server, backend, socket)
    if after["admin_state"] != state:
        raise CommandExecutionError(
            f"haproxy left {backend}/{server} in {after['admin_state']} after 'state {state}' "
            "(inherited from a tracked server, or disabled in the configuration?)"
        )
    saved = save_server_state(socket, state_file)
    if state != "ready" and wait:
        deadline = time.monotonic() + float(wait)
        while after["sessions"] and time.monotonic() < deadline:
            time.sleep(0.5)
            after = _one_server(server, backend, socket)
    return {
        "server": server,
        "backend": backend,
        "old": before["admin_state"],
        "new": after["admin_state"],
        "status": after["status"],
        "sessions": after["sessions"],
        "state_file": saved,
    }


def wait_server(server, backend=BACKEND, timeout=60, interval=0.5, socket=None):
    """
    Wait until haproxy's health checks see one server up (they go on while it is drained), so
    that a rolling deploy never takes the next node out before this one can serve again.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_haproxy.wait_server app1 timeout=60
    """
    for waited in __utils__["webstack_poll.until"](timeout, interval):
        view = _one_server(server, backend, socket)
        if view["up"]:
            log.debug("webstack_haproxy: %s/%s up after %ss", backend, server, waited)
            return view
    raise CommandExecutionError(
        f"haproxy still sees {backend}/{server} {view['status']} after {timeout}s "
        f"(check: {view['check_status']} {view['check_desc'] or ''})".rstrip()
    )


def _one_server(server, backend, socket):
    servers = haproxy_servers(backend=backend, socket=socket).get(backend, {})
    if server not in servers:
        raise CommandExecutionError(
            f"haproxy has no server {server!r} in backend {backend!r} "
            f"(servers: {', '.join(sorted(servers)) or 'none'})"
        )
    return servers[server]
