"""
haproxy's runtime API, with the standard library only: one command over the admin socket, and
the parsers of its answers (``show stat`` CSV by its header, ``show servers state`` format 1,
also the server-state file's format) and the views built from them.

Plain Python (synced by ``saltutil.sync_utils``, reached through ``__utils__``): the parsers are
pure and unit-tested on answers captured from a real haproxy.
"""

import csv
import io
import logging
import os
import re
import socket as _socket

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

#: What a haproxy backend or server name may be (``valid_name``).
NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

# haproxy's "show servers state" (format 1) codes, from its management guide.
_ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20  # forced, inherited, config, DNS resolution
_ADMIN_DRAIN = 0x08 | 0x10  # forced, inherited
_OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
_CHECK_RESULTS = {0: "unknown", 1: "neutral", 2: "failed", 3: "passed", 4: "condpass"}


def valid_name(value):
    """Whether ``value`` can be a haproxy backend or server name (and nothing more)."""
    return isinstance(value, str) and bool(NAME_RE.match(value))


def command(path, text, timeout=5.0):
    """Send one command ``text`` to the admin socket ``path``; haproxy's raw answer."""
    if "\n" in text or ";" in text:
        raise CommandExecutionError("haproxy_command: one command at a time (no ';' or newline)")
    if not os.path.exists(path):
        raise CommandExecutionError(
            f"haproxy admin socket {path} does not exist (is haproxy running, with "
            f"'stats socket {path} level admin' in its global section?)"
        )
    log.debug("webstack: haproxy %s: %s", path, text)
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(path)
        conn.sendall(text.encode("utf-8") + b"\n")
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as exc:
        raise CommandExecutionError(f"haproxy admin socket {path}: {text!r} failed: {exc}") from exc
    finally:
        conn.close()
    return b"".join(chunks).decode("utf-8", "replace")


def answer_error(answer):
    """haproxy answers a successful 'set' with an empty line; anything else is its error text."""
    text = answer.strip()
    return text or None


def number(value):
    """haproxy's CSV leaves unknown values empty; numbers become ints, the rest stays text."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return value


def parse_stat_csv(text):
    """``show stat``: one dict per line, keyed by the CSV header (``# pxname,svname,...``)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise CommandExecutionError(
            f"haproxy 'show stat': expected a '# pxname,svname,...' header, got {text[:80]!r}"
        )
    reader = csv.reader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    header = next(reader)
    return [
        {name: value for name, value in zip(header, values, strict=False) if name and name != "-"}
        for values in reader
    ]


def admin_state(mask):
    """``srv_admin_state`` bits -> ``maint``, ``drain`` or ``ready``."""
    if mask & _ADMIN_MAINT:
        return "maint"
    if mask & _ADMIN_DRAIN:
        return "drain"
    return "ready"


def _server_entry(header, line):
    fields = dict(zip(header, line.split(), strict=False))
    server = {key: number(value) for key, value in fields.items()}
    for key in ("be_name", "srv_name", "srv_addr", "srv_fqdn"):
        if key in fields:
            server[key] = fields[key]
    server["admin_state"] = admin_state(server.get("srv_admin_state") or 0)
    server["op_state"] = _OP_STATES.get(server.get("srv_op_state"), "unknown")
    server["check_result"] = _CHECK_RESULTS.get(server.get("srv_check_result"), "unknown")
    return server


def parse_servers_state(text):
    """``show servers state`` (or the server-state file): one dict per server, keyed by the
    ``# be_id be_name ...`` header, with ``admin_state``, ``op_state`` and ``check_result``."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    version = lines[0].strip()
    if version != "1":
        raise CommandExecutionError(
            f"haproxy servers state: unsupported format version {version!r} (expected 1)"
        )
    header = None
    servers = []
    for line in lines[1:]:
        if line.startswith("#"):
            if header is None:
                header = line.lstrip("#").split()
            continue
        if header is None:
            raise CommandExecutionError("haproxy servers state: data before the '# be_id' header")
        servers.append(_server_entry(header, line))
    return servers


def server_view(state, stat):
    """One server: its ``show servers state`` entry joined with its ``show stat`` row."""
    op_state = state["op_state"]
    up = op_state in ("running", "starting", "stopping")
    return {
        "status": stat.get("status") or op_state.upper(),
        "admin_state": state["admin_state"],
        "op_state": op_state,
        "up": up,
        "serving": up and state["admin_state"] == "ready",
        "check_status": stat.get("check_status") or None,
        "check_code": number(stat.get("check_code")),
        "check_result": state["check_result"],
        "check_desc": stat.get("check_desc") or None,
        "last_check": stat.get("last_chk") or None,
        "weight": number(stat.get("weight")),
        "sessions": number(stat.get("scur")) or 0,
        "addr": stat.get("addr") or f"{state.get('srv_addr')}:{state.get('srv_port')}",
    }


def merge_servers(servers_state, stat_rows):
    """``{backend: {server: view}}`` from ``show servers state`` (text) and ``show stat`` rows."""
    stats = {(row.get("pxname"), row.get("svname")): row for row in stat_rows}
    result = {}
    for server in parse_servers_state(servers_state):
        key = (server["be_name"], server["srv_name"])
        result.setdefault(server["be_name"], {})[server["srv_name"]] = server_view(
            server, stats.get(key, {})
        )
    return result


def _backend_view(row, members):
    return {
        "status": row.get("status"),
        "sessions": number(row.get("scur")) or 0,
        "servers": members,
        "servers_total": len(members),
        "servers_up": sum(1 for s in members.values() if s["up"]),
        "servers_serving": sum(1 for s in members.values() if s["serving"]),
    }


def health(rows, servers_state):
    """
    The lb's health from ``show stat`` rows and ``show servers state``: ``{frontends,
    backends, healthy, problems}``; a frontend not OPEN or a backend with no server in service
    is a problem.
    """
    servers = merge_servers(servers_state, rows)
    frontends, backends = {}, {}
    for row in rows:
        name, kind = row.get("pxname"), row.get("svname")
        if kind == "FRONTEND":
            frontends[name] = {
                "status": row.get("status"),
                "sessions": number(row.get("scur")) or 0,
                "requests": number(row.get("req_tot")) or 0,
            }
        elif kind == "BACKEND":
            backends[name] = _backend_view(row, servers.get(name, {}))
    problems = [
        f"frontend {n} is {f['status']}" for n, f in frontends.items() if f["status"] != "OPEN"
    ]
    problems += [
        f"backend {n}: no server in service"
        for n, b in backends.items()
        if not b["servers_serving"]
    ]
    return {"frontends": frontends, "backends": backends, "healthy": not problems,
            "problems": problems}  # fmt: skip


#: A request id as haproxy passes it on (the frontend's own rule keeps no other).
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def valid_request_id(value):
    """Whether ``value`` can be a request id (as the frontend keeps a client's, or makes one)."""
    return isinstance(value, str) and bool(REQUEST_ID_RE.match(value))


def request_lines(answer, lines=100, request_id=None):
    """The newest ``lines`` request log lines of a ``show events <ring>`` answer, oldest first;
    only the one(s) of ``request_id`` (the line's last field, the frontend's log-format) if
    given. haproxy answers an unknown ring with a message of its own, not events."""
    text = answer.strip()
    if text.startswith(("No such event sink", "Unknown", "Permission denied")):
        raise CommandExecutionError(f"haproxy 'show events': {text.splitlines()[0]}")
    found = [line for line in answer.splitlines() if line.strip()]
    if request_id is not None:
        found = [line for line in found if line.rsplit(" ", 1)[-1] == request_id]
    return found[-lines:]
