"""
A client for supervisord's XML-RPC interface on its unix socket: what ``supervisorctl status``,
``start`` and ``signal`` do, without starting ``supervisorctl`` (a Python program: 0.2 s a call
on a lab node, where the whole idempotent state run is meant to take about a second).

Standard library only. supervisord's socket is root's (mode 0700 in Debian's
``/etc/supervisor/supervisord.conf``), as is the minion.
"""

import http.client
import socket
import xmlrpc.client

from salt.exceptions import CommandExecutionError

# supervisord's RPC faults (supervisor/xmlrpc.py, class Faults).
FAULT_BAD_NAME = 10
FAULT_ALREADY_STARTED = 60
FAULT_NOT_RUNNING = 70


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path, timeout):
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host):
        return _UnixConnection(self._path, self._timeout)


def _call(path, method, *args, timeout=30):
    proxy = xmlrpc.client.ServerProxy(
        "http://localhost/RPC2", transport=_UnixTransport(path, timeout), allow_none=True
    )
    try:
        with proxy:
            return getattr(proxy, method)(*args)
    except xmlrpc.client.Fault:
        raise
    except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as exc:
        raise CommandExecutionError(f"supervisord on {path}: {method}: {exc}") from exc


def _refused(path, what, fault):
    return CommandExecutionError(f"supervisord on {path}: {what}: {fault.faultString}")


def process_state(path, name, *, timeout=30):
    """
    The program's state name (``RUNNING``, ``STOPPED``, ``STARTING``, ``BACKOFF``, ``FATAL``...),
    or None when supervisord has no program of that name.
    """
    try:
        info = _call(path, "supervisor.getProcessInfo", name, timeout=timeout)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == FAULT_BAD_NAME:
            return None
        raise _refused(path, name, fault) from fault
    return str(info.get("statename", ""))


def start(path, name, *, timeout=60):
    """Start the program and wait until supervisord holds it RUNNING (its ``startsecs``)."""
    try:
        _call(path, "supervisor.startProcess", name, True, timeout=timeout)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode != FAULT_ALREADY_STARTED:
            raise _refused(path, f"start {name}", fault) from fault


def signal(path, name, signame, *, timeout=30):
    """Send the program's processes ``signame`` (``HUP``...); False when it was not running."""
    try:
        _call(path, "supervisor.signalProcess", name, signame, timeout=timeout)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == FAULT_NOT_RUNNING:
            return False
        raise _refused(path, f"signal {name}", fault) from fault
    return True
