"""
Live state of a webstack node: who holds the VIP, what haproxy sees, whether the app and the
database answer.

Every function reads its paths and names from pillar ``webstack:lookup`` (the same keys and the
same fallbacks as ``salt/webstack/parameters/defaults.yaml``) and the cluster from
``webstack_topology.node``; every one of them takes keyword overrides (``socket=``,
``state_file=``, ``vip=``, ``interface=``, ``url=``...) so that it can be pointed at any instance.

- ``vip_owner``: the VIP on a local interface (ground truth), cross-checked with the VRRP state that
  keepalived's notify script records (``salt/webstack/lb/files/keepalived-notify``).
- ``backend_health``: per role. lb: haproxy's runtime API over the admin socket (``show stat``
  parsed by its CSV header, ``show servers state``), with the standard library only; app:
  ``/healthz`` and ``/readyz`` through nginx and directly on gunicorn's unix socket; db: the engine.
- ``status``: both, plus the role's services.

MongoDB (engine ``mongodb``): ``mongodb_replset`` (+ ``_initiate``, ``_add``) and the users
(``mongodb_user``, ``_create``, ``_update``, ``mongodb_login``), which the ``webstack.replset``
and ``webstack.mongodb_user`` states use, with ``mongodb_wait_primary`` in between.

haproxy's server admin state is changed with ``set_server_state`` (used by the
``webstack.server_state`` state and the rolling deploy), which also rewrites the server-state file
so that drain/maint survive a reload.
"""

import csv
import http.client
import io
import ipaddress
import json
import logging
import os
import re
import socket as _socket
import tempfile
import time
import urllib.parse

import salt.utils.path
import salt.utils.platform
from salt.exceptions import CommandExecutionError

try:
    import pymongo
    import pymongo.errors

    HAS_PYMONGO = True
except ImportError:  # only db nodes of the mongodb engine need it
    HAS_PYMONGO = False

log = logging.getLogger(__name__)

__virtualname__ = "webstack"

#: The fallbacks of every ``webstack:lookup`` key read here: the values of
#: salt/webstack/parameters/defaults.yaml (a unit test keeps the two equal).
DEFAULTS = {
    "lb": {
        "haproxy": {
            "service": "haproxy",
            "admin_socket": "/run/haproxy/admin.sock",
            "server_state_file": "/var/lib/haproxy/server-state",
        },
        "keepalived": {
            "service": "keepalived",
            "state_file": "/run/webstack/vrrp.json",
            "instance": "webstack",
        },
    },
    "app": {
        "socket": "/run/webstack-app/gunicorn.sock",
        "supervisor": {"service": "supervisor", "program": "webstack-app"},
        "nginx": {"service": "nginx"},
    },
    "ferretdb": {"service": "ferretdb"},
    "postgresql": {"service": "postgresql"},
    "mongodb": {"service": "mongod"},
}

#: The haproxy.cfg template's backend of app nodes (its servers are named after the nodes; the
#: frontend on the VIP is "www": backend_health reports every frontend and backend it finds).
BACKEND = "app"
SERVER_STATES = ("ready", "drain", "maint")
VRRP_STATES = ("MASTER", "BACKUP", "FAULT")

# haproxy's "show servers state" (format 1) codes, from its management guide.
_ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20  # forced, inherited, config, DNS resolution
_ADMIN_DRAIN = 0x08 | 0x10  # forced, inherited
_OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
_CHECK_RESULTS = {0: "unknown", 1: "neutral", 2: "failed", 3: "passed", 4: "condpass"}

_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_HTTP_TIMEOUT = 2.0
_MONGO_NOT_INITIATED = 94  # NotYetInitialized
_MONGO_NO_REPLICATION = 76  # NoReplicationEnabled
_MONGO_AUTH_FAILED = 18  # AuthenticationFailed
_MONGO_UNAUTHORIZED = 13  # Unauthorized
# Worth retrying a replSetReconfig: ConfigurationInProgress, CurrentConfigNotCommittedYet,
# NotWritablePrimary, InterruptedDueToReplStateChange, PrimarySteppedDown.
_MONGO_RECONFIG_RETRY = (109, 308, 10107, 11602, 189)


def __virtual__():
    if not salt.utils.platform.is_linux():
        return (False, "webstack: Linux only (it reads iproute2 and haproxy's unix socket)")
    if not salt.utils.path.which("ip"):
        return (False, "webstack: the 'ip' command was not found; install iproute2")
    return __virtualname__


# --------------------------------------------------------------------------------------------------
# Configuration: pillar webstack:lookup over DEFAULTS, and the topology view
# --------------------------------------------------------------------------------------------------


def _pillar(key, default=None):
    # __pillar__ directly: in Salt 3008 pillar.get masks secrets inside modules.
    data = __pillar__
    for part in key.split(":"):
        if not hasattr(data, "get"):
            return default
        data = data.get(part)
        if data is None:
            return default
    return data


def _lookup(key):
    """``webstack:lookup:<key>`` from pillar, else the same key in DEFAULTS."""
    default = DEFAULTS
    for part in key.split(":"):
        default = default[part]
    value = _pillar("webstack:lookup:" + key)
    return default if value in (None, "") else value


def _node():
    """This minion's topology view (``webstack_topology.node``), or an empty view without one."""
    func = __salt__.get("webstack_topology.node")
    if func is None:
        return {"valid": False, "errors": ["webstack_topology module not loaded"], "roles": []}
    try:
        return func()
    except Exception as exc:  # pylint: disable=broad-except
        return {"valid": False, "errors": [str(exc)], "roles": []}


def _self_name(node):
    return node.get("name") or __grains__.get("id")


# --------------------------------------------------------------------------------------------------
# Parsers (pure functions: unit-tested on outputs captured from the real programs)
# --------------------------------------------------------------------------------------------------


def _number(value):
    """haproxy's CSV leaves unknown values empty; numbers become ints, the rest stays text."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return value


def parse_stat_csv(text):
    """
    Parse the output of haproxy's ``show stat``: one dict per line, keyed by the CSV header.

    The header (first line, ``# pxname,svname,...``) names the columns, so the column order and
    the number of columns of a given haproxy version do not matter.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_stat_csv "$(cat show-stat.csv)"
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise CommandExecutionError(
            f"haproxy 'show stat': expected a '# pxname,svname,...' header, got {text[:80]!r}"
        )
    reader = csv.reader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    header = next(reader)
    rows = []
    for values in reader:
        row = {}
        for name, value in zip(header, values, strict=False):
            if name and name != "-":
                row[name] = value
        rows.append(row)
    return rows


def parse_servers_state(text):
    """
    Parse haproxy's ``show servers state`` (also the server-state file's format): one dict per
    server, keyed by the ``# be_id be_name ...`` header, with the admin/operational codes decoded
    into ``admin_state`` (ready, drain, maint), ``op_state`` and ``check_result``.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_servers_state "$(cat /var/lib/haproxy/server-state)"
    """
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
        fields = dict(zip(header, line.split(), strict=False))
        server = {key: _number(value) for key, value in fields.items()}
        for key in ("be_name", "srv_name", "srv_addr", "srv_fqdn"):
            if key in fields:
                server[key] = fields[key]
        admin = server.get("srv_admin_state") or 0
        server["admin_state"] = _admin_state(admin)
        server["op_state"] = _OP_STATES.get(server.get("srv_op_state"), "unknown")
        server["check_result"] = _CHECK_RESULTS.get(server.get("srv_check_result"), "unknown")
        servers.append(server)
    return servers


def _admin_state(mask):
    if mask & _ADMIN_MAINT:
        return "maint"
    if mask & _ADMIN_DRAIN:
        return "drain"
    return "ready"


def parse_vrrp_state(text):
    """
    Parse the JSON object that ``keepalived-notify`` writes: ``{instance, type, state, priority,
    since}``. Raises an error naming what is wrong when the text is not such an object.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_vrrp_state "$(cat /run/webstack/vrrp.json)"
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CommandExecutionError(f"VRRP state is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not {"instance", "state"} <= set(data):
        raise CommandExecutionError(f"VRRP state lacks 'instance'/'state': {text[:120]!r}")
    return data


def parse_ip_addresses(text):
    """
    Parse ``ip -j addr show``: ``{interface: ["10.0.0.1/24", ...]}`` (IPv4 and IPv6).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_ip_addresses "$(ip -j addr show)"
    """
    try:
        links = json.loads(text or "[]")
    except ValueError as exc:
        raise CommandExecutionError(f"'ip -j addr' did not print JSON: {exc}") from exc
    result = {}
    for link in links:
        if "ifname" not in link:
            continue
        result[link["ifname"]] = [
            f"{addr['local']}/{addr.get('prefixlen', 32)}"
            for addr in link.get("addr_info", [])
            if "local" in addr
        ]
    return result


# --------------------------------------------------------------------------------------------------
# VIP
# --------------------------------------------------------------------------------------------------


def _addresses(netns=None):
    cmd = ["ip"] + (["-n", netns] if netns else []) + ["-j", "addr", "show"]
    out = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)
    if out["retcode"] != 0:
        raise CommandExecutionError(f"{' '.join(cmd)} failed: {out['stderr'].strip()}")
    return parse_ip_addresses(out["stdout"])


def _read_vrrp_state(path):
    """(data, problem): the notify script's record, or None and why it is missing."""
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_vrrp_state(handle.read()), None
    except FileNotFoundError:
        return None, f"no VRRP state file {path} (keepalived has not run the notify script yet)"
    except (OSError, CommandExecutionError) as exc:
        return None, f"cannot read VRRP state file {path}: {exc}"


def vip_owner(vip=None, interface=None, state_file=None, instance=None, netns=None):
    """
    Whether this node holds the VIP, and keepalived's recorded VRRP state.

    The ground truth is the VIP configured on a local interface; the VRRP state comes from the
    file keepalived's notify script writes, and the two are cross-checked (``consistent``).

    vip
        The VIP address (default: the topology's ``vip.address``).
    interface
        The interface keepalived puts it on (default: the topology's ``vip.interface``).
    state_file
        The notify script's file (default: ``webstack:lookup:lb:keepalived:state_file``).
    instance
        The vrrp_instance name (default: ``webstack:lookup:lb:keepalived:instance``).
    netns
        Look into this network namespace (default: ``webstack:lookup:lb:keepalived:netns`` when
        set, for a keepalived run with ``net_namespace``; none otherwise).

    Returns ``{vip, owner, interface, vrrp_state, priority}`` plus ``lb`` (whether this node is an
    lb in the topology), ``consistent``, ``since``, a ``comment`` and, on the holder, ``others``:
    the other hosts that answer ARP for the VIP (``[{mac, addresses, node}]``; non-empty is a split
    brain, e.g. a frozen peer that kept the address; None when it could not be checked).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.vip_owner
        salt '*' webstack.vip_owner
    """
    node = _node()
    topo_vip = node.get("vip") or {}
    is_lb = "lb" in (node.get("roles") or [])
    check_vrrp = is_lb or vip is not None
    vip = vip or topo_vip.get("address")
    interface = interface or topo_vip.get("interface")
    ret = {
        "vip": vip,
        "owner": False,
        "interface": interface,
        "vrrp_state": "UNKNOWN",
        "priority": node.get("priority"),
        "lb": is_lb,
        "node": _self_name(node),
        "consistent": True,
        "since": None,
    }
    if not vip:
        ret["comment"] = "no VIP to look for: the topology has none (pillar webstack:topology)"
        ret["consistent"] = False
        return ret
    netns = netns or _pillar("webstack:lookup:lb:keepalived:netns")
    holders = _vip_holders(vip, netns)
    ret["owner"] = bool(holders)
    ret["others"] = None
    comments = []
    if holders:
        if interface and interface not in holders:
            comments.append(f"the VIP is on {', '.join(holders)}, not on {interface}")
        ret["interface"] = holders[0]
        # The local view cannot see a second holder (a frozen or cut-off peer that kept the VIP):
        # ask the wire who else answers ARP for it.
        macs, problem = _vip_other_holders(vip, holders[0], netns)
        if problem:
            comments.append(problem)
        else:
            ret["others"] = _name_macs(macs, holders[0], netns, node.get("nodes") or [])
        if ret["others"]:
            names = ", ".join(o["node"] or o["mac"] for o in ret["others"])
            comments.append(f"SPLIT BRAIN: {names} also answer ARP for the VIP {vip}")
    if not check_vrrp:
        roles = ", ".join(node.get("roles") or []) or "none"
        ret["consistent"] = not holders
        ret["comment"] = (
            f"{ret['node']} is not an lb node (roles: {roles}): keepalived does not run here"
            + (f"; yet it holds the VIP {vip} on {holders[0]}!" if holders else "")
        )
        return ret
    comments += _cross_check_vrrp(
        ret,
        state_file or _lookup("lb:keepalived:state_file"),
        instance or _lookup("lb:keepalived:instance"),
    )
    if ret["others"]:
        ret["consistent"] = False
    if not comments:
        comments.append(
            f"{'holds' if ret['owner'] else 'does not hold'} the VIP {vip} ({ret['vrrp_state']})"
        )
    ret["comment"] = "; ".join(comments)
    return ret


def parse_arping(text):
    """
    The MAC addresses in iputils ``arping`` replies (``Unicast reply from IP [MAC]  0.6ms``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.parse_arping "$(arping -D -c 2 -I eth0 10.77.0.100)"
    """
    return sorted(
        {mac.lower() for mac in re.findall(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]", text or "")}
    )


def _vip_other_holders(vip, interface, netns=None):
    """(MACs of other hosts answering ARP for ``vip`` on ``interface``, or None; a problem).

    Duplicate address detection (``arping -D``: sender 0.0.0.0, so our own stack stays silent):
    any reply comes from another host that has the VIP configured.
    """
    arping = salt.utils.path.which("arping")
    if not arping:
        return None, "arping (iputils-arping) is not installed: no check for a second VIP holder"
    cmd = ["ip", "netns", "exec", netns] if netns else []
    cmd += [arping, "-D", "-c", "2", "-w", "2", "-I", interface, str(vip)]
    out = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)
    if out["retcode"] not in (0, 1):  # 0: nobody answered, 1: somebody did
        return None, f"arping failed ({out['retcode']}): {out['stderr'].strip()[:200]}"
    # This host answers too through any other interface on the same segment (Linux answers ARP
    # for local addresses on every interface): its own MACs are not a second holder.
    own = _local_macs(netns)
    return [mac for mac in parse_arping(out["stdout"]) if mac not in own], None


def _local_macs(netns=None):
    cmd = ["ip"] + (["-n", netns] if netns else []) + ["-j", "link", "show"]
    out = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)
    try:
        links = json.loads(out["stdout"] or "[]") if out["retcode"] == 0 else []
    except ValueError:
        links = []
    return {str(link.get("address", "")).lower() for link in links}


def _name_macs(macs, interface, netns, nodes):
    """``[{mac, addresses, node}]``: each MAC with the addresses this host's neighbour table has
    for it, and the topology node owning one of them (None when unknown)."""
    if not macs:
        return []
    cmd = ["ip"] + (["-n", netns] if netns else []) + ["-j", "neigh", "show", "dev", interface]
    out = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)
    try:
        neighbours = json.loads(out["stdout"] or "[]") if out["retcode"] == 0 else []
    except ValueError:
        neighbours = []
    by_address = {n.get("address"): n.get("name") for n in nodes}
    named = []
    for mac in macs:
        addresses = sorted(
            n["dst"] for n in neighbours if str(n.get("lladdr", "")).lower() == mac and "dst" in n
        )
        owner = next((by_address[a] for a in addresses if a in by_address), None)
        named.append({"mac": mac, "addresses": addresses, "node": owner})
    return named


def _vip_holders(vip, netns):
    """The local interfaces (in ``netns``) that carry the address ``vip``."""
    try:
        wanted = ipaddress.ip_address(str(vip))
    except ValueError as exc:
        raise CommandExecutionError(f"vip: {vip!r} is not an IP address") from exc
    return [
        ifname
        for ifname, addrs in _addresses(netns).items()
        if any(ipaddress.ip_interface(addr).ip == wanted for addr in addrs)
    ]


def _cross_check_vrrp(ret, state_file, instance):
    """Fill vrrp_state/priority/since/consistent of ``ret`` from the notify record; the comments."""
    comments = []
    record, problem = _read_vrrp_state(state_file)
    if record is not None and record.get("instance") != instance:
        problem = f"{state_file} records instance {record.get('instance')!r}, not {instance!r}"
        record = None
    if record is None:
        comments.append(problem)
    else:
        recorded = str(record.get("state", "")).upper()
        ret["since"] = record.get("since")
        if isinstance(record.get("priority"), int):
            ret["priority"] = record["priority"]
        if recorded in VRRP_STATES:
            ret["vrrp_state"] = recorded
        else:
            comments.append(f"keepalived recorded state {recorded or 'nothing'} (stopped?)")
    if ret["vrrp_state"] == "UNKNOWN":
        # A VIP nobody accounts for (keepalived stopped with -V, or added by hand) is suspect.
        ret["consistent"] = not ret["owner"]
    else:
        ret["consistent"] = ret["owner"] == (ret["vrrp_state"] == "MASTER")
    if not ret["consistent"]:
        comments.append(
            f"keepalived says {ret['vrrp_state']} but the VIP is "
            + ("present" if ret["owner"] else "absent")
        )
    return comments


# --------------------------------------------------------------------------------------------------
# haproxy runtime API (stdlib socket)
# --------------------------------------------------------------------------------------------------


def haproxy_command(command, socket=None, timeout=5.0):
    """
    Send one command to haproxy's runtime API (the admin socket) and return its raw answer.

    command
        e.g. ``show info``, ``show stat``, ``show servers state app``.
    socket
        The admin socket (default: ``webstack:lookup:lb:haproxy:admin_socket``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.haproxy_command "show info"
    """
    path = socket or _lookup("lb:haproxy:admin_socket")
    if "\n" in command or ";" in command:
        raise CommandExecutionError("haproxy_command: one command at a time (no ';' or newline)")
    if not os.path.exists(path):
        raise CommandExecutionError(
            f"haproxy admin socket {path} does not exist (is haproxy running, with "
            f"'stats socket {path} level admin' in its global section?)"
        )
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(path)
        conn.sendall(command.encode("utf-8") + b"\n")
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as exc:
        raise CommandExecutionError(
            f"haproxy admin socket {path}: {command!r} failed: {exc}"
        ) from exc
    finally:
        conn.close()
    return b"".join(chunks).decode("utf-8", "replace")


def _answer_error(answer):
    """haproxy answers a successful 'set' with an empty line; anything else is its error text."""
    text = answer.strip()
    return text or None


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

        salt-call webstack.haproxy_servers backend=app
    """
    if backend is not None and not _NAME_RE.match(backend):
        raise CommandExecutionError(f"backend: {backend!r} is not a valid haproxy backend name")
    answer = haproxy_command("show servers state" + (f" {backend}" if backend else ""), socket)
    if not answer.lstrip().startswith("1"):
        raise CommandExecutionError(f"haproxy 'show servers state': {answer.strip()}")
    return _merge_servers(answer, parse_stat_csv(haproxy_command("show stat", socket)))


def _merge_servers(servers_state, stat_rows):
    """``show servers state`` (admin/operational state) joined with ``show stat`` (counters)."""
    stats = {(row.get("pxname"), row.get("svname")): row for row in stat_rows}
    result = {}
    for server in parse_servers_state(servers_state):
        key = (server["be_name"], server["srv_name"])
        result.setdefault(server["be_name"], {})[server["srv_name"]] = _server_view(
            server, stats.get(key, {})
        )
    return result


def _server_view(state, stat):
    op_state = state["op_state"]
    up = op_state in ("running", "starting", "stopping")
    return {
        "status": stat.get("status") or op_state.upper(),
        "admin_state": state["admin_state"],
        "op_state": op_state,
        "up": up,
        "serving": up and state["admin_state"] == "ready",
        "check_status": stat.get("check_status") or None,
        "check_code": _number(stat.get("check_code")),
        "check_result": state["check_result"],
        "check_desc": stat.get("check_desc") or None,
        "last_check": stat.get("last_chk") or None,
        "weight": _number(stat.get("weight")),
        "sessions": _number(stat.get("scur")) or 0,
        "addr": stat.get("addr") or f"{state.get('srv_addr')}:{state.get('srv_port')}",
    }


def _lb_health(socket=None):
    path = socket or _lookup("lb:haproxy:admin_socket")
    rows = parse_stat_csv(haproxy_command("show stat", path))
    servers = _merge_servers(haproxy_command("show servers state", path), rows)
    frontends, backends = {}, {}
    for row in rows:
        name, kind = row.get("pxname"), row.get("svname")
        if kind == "FRONTEND":
            frontends[name] = {
                "status": row.get("status"),
                "sessions": _number(row.get("scur")) or 0,
                "requests": _number(row.get("req_tot")) or 0,
            }
        elif kind == "BACKEND":
            members = servers.get(name, {})
            backends[name] = {
                "status": row.get("status"),
                "sessions": _number(row.get("scur")) or 0,
                "servers": members,
                "servers_total": len(members),
                "servers_up": sum(1 for s in members.values() if s["up"]),
                "servers_serving": sum(1 for s in members.values() if s["serving"]),
            }
    problems = [
        f"frontend {n} is {f['status']}" for n, f in frontends.items() if f["status"] != "OPEN"
    ]
    problems += [
        f"backend {n}: no server in service"
        for n, b in backends.items()
        if not b["servers_serving"]
    ]
    return {
        "socket": path,
        "frontends": frontends,
        "backends": backends,
        "healthy": not problems,
        "problems": problems,
    }


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

        salt-call webstack.save_server_state
    """
    path = state_file or _lookup("lb:haproxy:server_state_file")
    answer = haproxy_command("show servers state", socket)
    parse_servers_state(answer)  # refuse to write anything haproxy could not load back
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise CommandExecutionError(f"server-state file {path}: directory {directory} is missing")
    fd, tmp = tempfile.mkstemp(prefix=".server-state.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(answer.rstrip("\n") + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise CommandExecutionError(f"cannot write server-state file {path}: {exc}") from exc
    return path


def saved_server_state(server, backend=BACKEND, state_file=None):
    """
    The admin state (ready, drain, maint) the server-state file records for one server, or
    ``None`` when the file or the server is missing from it.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.saved_server_state app1
    """
    path = state_file or _lookup("lb:haproxy:server_state_file")
    try:
        with open(path, encoding="utf-8") as handle:
            servers = parse_servers_state(handle.read())
    except FileNotFoundError:
        return None
    except (OSError, CommandExecutionError) as exc:
        log.warning("webstack: cannot read server-state file %s: %s", path, exc)
        return None
    for entry in servers:
        if entry.get("be_name") == backend and entry.get("srv_name") == server:
            return entry["admin_state"]
    return None


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

        salt-call webstack.set_server_state app1 drain wait=30
        salt -C 'I@webstack:topology:name:lab' webstack.set_server_state app1 ready
    """
    if state not in SERVER_STATES:
        raise CommandExecutionError(f"state: {state!r} is not one of {', '.join(SERVER_STATES)}")
    for key, value in (("server", server), ("backend", backend)):
        if not isinstance(value, str) or not _NAME_RE.match(value):
            raise CommandExecutionError(f"{key}: {value!r} is not a valid haproxy name")
    before = _one_server(server, backend, socket)
    if before["admin_state"] != state:
        error = _answer_error(
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

        salt-call webstack.wait_server app1 timeout=60
    """
    deadline = time.monotonic() + float(timeout)
    while True:
        view = _one_server(server, backend, socket)
        if view["up"]:
            return view
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"haproxy still sees {backend}/{server} {view['status']} after {timeout}s "
                f"(check: {view['check_status']} {view['check_desc'] or ''})".rstrip()
            )
        time.sleep(float(interval))


def _one_server(server, backend, socket):
    servers = haproxy_servers(backend=backend, socket=socket).get(backend, {})
    if server not in servers:
        raise CommandExecutionError(
            f"haproxy has no server {server!r} in backend {backend!r} "
            f"(servers: {', '.join(sorted(servers)) or 'none'})"
        )
    return servers[server]


# --------------------------------------------------------------------------------------------------
# App node: HTTP through nginx and on gunicorn's unix socket
# --------------------------------------------------------------------------------------------------


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _http_get(path, url=None, unix_socket=None, timeout=_HTTP_TIMEOUT):
    where = f"unix:{unix_socket}" if unix_socket else url
    try:
        if unix_socket:
            conn = _UnixHTTPConnection(unix_socket, timeout)
        else:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise CommandExecutionError(f"url: {url!r} is not an http://host[:port] URL")
            conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        try:
            conn.request("GET", path, headers={"User-Agent": "salt-webstack"})
            response = conn.getresponse()
            raw = response.read(65536)
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return {
            "url": f"{where}{path}",
            "status": None,
            "ok": False,
            "error": str(exc) or repr(exc),
        }
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")[:200]
    return {
        "url": f"{where}{path}",
        "status": response.status,
        "ok": response.status == 200,
        "body": body,
    }


def _app_url(node, url):
    if url:
        return url.rstrip("/")
    address = (node.get("self") or {}).get("address")
    if not address:
        raise CommandExecutionError(
            "no url= given and this minion has no address in the topology (webstack:topology)"
        )
    return f"http://{address}:{(node.get('ports') or {}).get('app', 80)}"


def _app_health(node, url=None, app_socket=None, timeout=_HTTP_TIMEOUT):
    base = _app_url(node, url)
    app_socket = app_socket or _lookup("app:socket")
    nginx = {
        path: _http_get(f"/{path}", url=base, timeout=timeout) for path in ("healthz", "readyz")
    }
    gunicorn = {
        path: _http_get(f"/{path}", unix_socket=app_socket, timeout=timeout)
        for path in ("healthz", "readyz")
    }
    return {
        "nginx": dict(nginx, url=base),
        "gunicorn": dict(gunicorn, socket=app_socket),
        "healthy": nginx["healthz"]["ok"] and gunicorn["healthz"]["ok"],
        "ready": nginx["readyz"]["ok"],
    }


def wait_healthy(timeout=120, interval=1, path="/healthz", url=None):
    """
    Wait until this app node answers 200 on its health endpoint through nginx; fail after
    ``timeout`` seconds (the rolling deploy uses it before putting the node back in service).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.wait_healthy timeout=60
    """
    base = _app_url(_node(), url)
    deadline = time.monotonic() + float(timeout)
    while True:
        answer = _http_get(path, url=base)
        if answer["ok"]:
            return answer
        if time.monotonic() >= deadline:
            raise CommandExecutionError(
                f"{base}{path} not healthy after {timeout}s: "
                + (f"HTTP {answer['status']}" if answer["status"] else answer.get("error", "?"))
            )
        time.sleep(float(interval))


# --------------------------------------------------------------------------------------------------
# DB node: PostgreSQL (ferretdb engine) and MongoDB (replica set)
# --------------------------------------------------------------------------------------------------


def _postgresql_health(port):
    run = __salt__["cmd.run_all"]
    if not salt.utils.path.which("pg_isready"):
        return {"healthy": False, "error": "pg_isready not found (postgresql-client is missing)"}
    ready = run(["pg_isready", "-p", str(port)], python_shell=False, ignore_retcode=True)
    ret = {
        "port": port,
        "accepting": ready["retcode"] == 0,
        "pg_isready": (ready["stdout"] or ready["stderr"]).strip(),
        "role": None,
    }
    if ret["accepting"]:
        query = run(
            [
                "psql",
                "-XAtq",
                "-p",
                str(port),
                "-d",
                "postgres",
                "-c",
                "select pg_is_in_recovery()",
            ],
            runas="postgres",
            python_shell=False,
            ignore_retcode=True,
        )
        if query["retcode"] == 0:
            ret["role"] = "standby" if query["stdout"].strip() == "t" else "primary"
        else:
            ret["error"] = f"psql as postgres: {query['stderr'].strip()}"
    ret["healthy"] = ret["accepting"] and ret["role"] is not None
    return ret


def _mongo_client(
    host, port, username=None, password=None, *, timeout_ms=2000, auth_source="admin"
):
    kwargs = {
        "host": host,
        "port": int(port),
        "directConnection": True,
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
    }
    if username and password:
        kwargs.update(username=username, password=password, authSource=auth_source)
    return pymongo.MongoClient(**kwargs)


def _mongo_defaults(host, port, username, password):
    if not HAS_PYMONGO:
        raise CommandExecutionError(
            "pymongo is not importable by the minion's Python (install python3-pymongo)"
        )
    node = _node()
    port = port or (node.get("ports") or {}).get("mongodb", 27017)
    password = (
        password if password is not None else _pillar("webstack:secrets:mongodb_admin_password")
    )
    return host or "127.0.0.1", int(port), username or "admin", password


def _mongo(func, host=None, port=None, username=None, password=None):
    """Run ``func(client)``; without an admin user yet, fall back to the localhost exception."""
    client = _mongo_client(host, port, username, password)
    try:
        return func(client)
    except pymongo.errors.OperationFailure as exc:
        if exc.code != _MONGO_AUTH_FAILED or not password:
            raise
        log.debug(
            "webstack: admin login refused on %s:%s, trying the localhost exception", host, port
        )
    finally:
        client.close()
    client = _mongo_client(host, port)
    try:
        return func(client)
    finally:
        client.close()


def _replset_view(client):
    admin = client.admin
    hello = admin.command("hello")
    view = {
        "initiated": False,
        "name": None,
        "me": hello.get("me"),
        "is_primary": bool(hello.get("isWritablePrimary")),
        "primary": hello.get("primary"),
        "members": [],
        "config": None,
    }
    try:
        status = admin.command("replSetGetStatus")
    except pymongo.errors.OperationFailure as exc:
        if exc.code == _MONGO_NOT_INITIATED:
            return view
        if exc.code == _MONGO_NO_REPLICATION:
            raise CommandExecutionError(
                "mongod runs without replication: set replication.replSetName in mongod.conf"
            ) from exc
        raise
    config = _replset_config(admin, status)
    view.update(
        initiated=True,
        name=status.get("set"),
        members=[
            {
                "name": m.get("name"),
                "state": m.get("stateStr"),
                "health": m.get("health"),
                "self": bool(m.get("self")),
            }
            for m in status.get("members", [])
        ],
        config={
            "version": config.get("version"),
            "members": [{"_id": m["_id"], "host": m["host"]} for m in config.get("members", [])],
        },
    )
    primaries = [m["name"] for m in view["members"] if m["state"] == "PRIMARY"]
    view["primary"] = view["primary"] or (primaries[0] if primaries else None)
    return view


def _replset_config(admin, status):
    """replSetGetConfig; under the localhost exception (no user yet), which allows
    replSetGetStatus but not replSetGetConfig, the members as the status lists them."""
    try:
        return admin.command("replSetGetConfig")["config"]
    except pymongo.errors.OperationFailure as exc:
        if exc.code != _MONGO_UNAUTHORIZED:
            raise
    members = status.get("members", [])
    versions = [m.get("configVersion") for m in members if m.get("self")]
    return {
        "version": versions[0] if versions else None,
        "members": [{"_id": m["_id"], "host": m["name"]} for m in members],
    }


def _mongo_error(exc):
    """pymongo's message without the topology description it appends to a selection timeout."""
    return str(exc).split(", Timeout: ", 1)[0]


def _mongo_call(func, host, port, username, password):
    host, port, username, password = _mongo_defaults(host, port, username, password)
    try:
        return _mongo(func, host, port, username, password)
    except CommandExecutionError:
        raise
    except pymongo.errors.PyMongoError as exc:
        raise CommandExecutionError(f"MongoDB at {host}:{port}: {_mongo_error(exc)}") from exc


def mongodb_replset(host=None, port=None, username=None, password=None):
    """
    The replica set as the local mongod sees it: ``{initiated, name, me, is_primary, primary,
    members: [{name, state, health, self}], config: {version, members: [{_id, host}]}}``.

    Logs in as ``admin`` with pillar ``webstack:secrets:mongodb_admin_password``; before that user
    exists, uses MongoDB's localhost exception (connect through 127.0.0.1).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_replset
    """
    return _mongo_call(_replset_view, host, port, username, password)


def mongodb_replset_initiate(name, members, *, host=None, port=None, username=None, password=None):
    """
    Initiate the replica set ``name`` with ``members`` (``["host:port", ...]``, in order).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_replset_initiate rs0 '["10.0.0.31:27017", "10.0.0.32:27017"]'
    """
    config = {"_id": name, "members": [{"_id": i, "host": h} for i, h in enumerate(members)]}

    def initiate(client):
        client.admin.command("replSetInitiate", config)
        return config

    return _mongo_call(initiate, host, port, username, password)


def mongodb_replset_add(
    member, *, host=None, port=None, username=None, password=None, timeout=60, interval=1
):
    """
    Add one member (``host:port``) to the replica set with one ``replSetReconfig`` (MongoDB
    accepts one voting member more per reconfiguration); retries while the previous
    reconfiguration is still being committed. Run it against the PRIMARY.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_replset_add 10.0.0.33:27017
    """

    def add(client):
        deadline = time.monotonic() + float(timeout)
        while True:
            config = client.admin.command("replSetGetConfig")["config"]
            hosts = [m["host"] for m in config["members"]]
            if member in hosts:
                return {"version": config["version"], "members": hosts}
            new = dict(config)
            new["version"] = config["version"] + 1
            next_id = max((m["_id"] for m in config["members"]), default=-1) + 1
            new["members"] = [*config["members"], {"_id": next_id, "host": member}]
            try:
                client.admin.command("replSetReconfig", new)
                return {"version": new["version"], "members": [*hosts, member]}
            except pymongo.errors.OperationFailure as exc:
                if exc.code not in _MONGO_RECONFIG_RETRY or time.monotonic() >= deadline:
                    raise
                log.info("webstack: reconfig adding %s refused (%s), retrying", member, exc)
                time.sleep(float(interval))

    return _mongo_call(add, host, port, username, password)


def _hello(host, port):
    client = _mongo_client(host, port)
    try:
        return client.admin.command("hello")
    finally:
        client.close()


def mongodb_wait_primary(timeout=60, interval=1, *, host=None, port=None):
    """
    Wait until the mongod at ``host:port`` is its replica set's writable PRIMARY (``hello``'s
    ``isWritablePrimary``), as after ``replSetInitiate`` while the first election runs. Returns
    ``{me, primary, set, waited}``; raises an error naming what mongod last said once
    ``timeout`` seconds have passed (``timeout=0``: look once, do not wait).

    ``hello`` needs no login: this works before any user exists.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_wait_primary
        salt-call webstack.mongodb_wait_primary timeout=120
    """
    host, port, _, _ = _mongo_defaults(host, port, None, None)
    start = time.monotonic()
    while True:
        try:
            hello = _hello(host, port)
            if hello.get("isWritablePrimary"):
                return {
                    "me": hello.get("me"),
                    "primary": hello.get("primary"),
                    "set": hello.get("setName"),
                    "waited": round(time.monotonic() - start, 1),
                }
            if hello.get("setName"):
                last = f"it is not PRIMARY (primary: {hello.get('primary') or 'none elected yet'})"
            else:
                last = "its replica set is not initiated"
        except pymongo.errors.PyMongoError as exc:
            last = f"no answer ({_mongo_error(exc)})"
        if time.monotonic() - start >= float(timeout):
            after = f" after {timeout}s" if float(timeout) > 0 else ""
            raise CommandExecutionError(
                f"mongod at {host}:{port} is not the writable PRIMARY{after}: {last}"
            )
        time.sleep(float(interval))


def _localhost_exception(client):
    """Whether MongoDB's localhost exception is open (no user exists yet) for ``client``.

    The exception grants an unauthenticated localhost client replSetGetStatus (and createUser on
    ``admin``), nothing else: replSetGetStatus answering (or saying the set is not initiated)
    means it is open; Unauthorized, or anything else (a server without it), means closed.
    """
    try:
        client.admin.command("replSetGetStatus")
    except pymongo.errors.OperationFailure as exc:
        return exc.code in (_MONGO_NOT_INITIATED, _MONGO_NO_REPLICATION)
    return True


def _mongo_users(func, host, port, username, password):
    """Run ``func(client, bootstrap)`` logged in as ``username`` (``bootstrap`` False) or, when
    that login is refused and no user exists yet, through the localhost exception (True)."""
    host, port, username, password = _mongo_defaults(host, port, username, password)
    try:
        if password:
            client = _mongo_client(host, port, username, password)
            try:
                return func(client, False)
            except pymongo.errors.OperationFailure as exc:
                if exc.code != _MONGO_AUTH_FAILED:
                    raise
            finally:
                client.close()
        client = _mongo_client(host, port)
        try:
            if not _localhost_exception(client):
                login = "refused the login as" if password else "got no password for"
                raise CommandExecutionError(
                    f"MongoDB at {host}:{port} {login} {username!r} and users exist already "
                    "(no localhost exception): check pillar webstack:secrets:mongodb_admin_password"
                )
            return func(client, True)
        finally:
            client.close()
    except pymongo.errors.PyMongoError as exc:
        raise CommandExecutionError(f"MongoDB at {host}:{port}: {_mongo_error(exc)}") from exc


def _role_docs(roles, database):
    """``["readWrite", {"role": "root", "db": "admin"}]`` -> role documents, ``database`` by
    default, sorted by (db, role)."""
    docs = []
    for role in roles or []:
        if isinstance(role, str):
            docs.append({"role": role, "db": database})
        elif isinstance(role, dict) and isinstance(role.get("role"), str):
            docs.append({"role": role["role"], "db": role.get("db") or database})
        else:
            raise CommandExecutionError(f"roles: {role!r} is neither a name nor {{role, db}}")
    return sorted(
        {(d["db"], d["role"]): d for d in docs}.values(), key=lambda d: (d["db"], d["role"])
    )


def mongodb_user(name, database="admin", *, host=None, port=None, username=None, password=None):
    """
    One MongoDB user as ``usersInfo`` shows it: ``{name, database, exists, roles: [{role, db}],
    bootstrap}``.

    Logs in as ``username`` (default ``admin``) with ``password`` (default pillar
    ``webstack:secrets:mongodb_admin_password``). Before any user exists that login is refused;
    MongoDB's localhost exception then allows creating the first user but not ``usersInfo``:
    the answer is ``exists: False`` with ``bootstrap: True`` (no user exists at all). When the
    login is refused although users exist, raises an error.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_user admin
        salt-call webstack.mongodb_user webstack database=webstack
    """

    def info(client, bootstrap):
        view = {"name": name, "database": database, "exists": False, "roles": []}
        view["bootstrap"] = bootstrap
        if bootstrap:
            return view
        reply = client[database].command("usersInfo", {"user": name, "db": database})
        for user in reply.get("users") or []:
            if user.get("user") == name and user.get("db", database) == database:
                view.update(exists=True, roles=_role_docs(user.get("roles"), database))
        return view

    return _mongo_users(info, host, port, username, password)


def mongodb_user_create(
    name, passwd, roles, database="admin", *, host=None, port=None, username=None, password=None
):
    """
    Create the MongoDB user ``name`` in ``database`` with the password ``passwd`` and ``roles``
    (role names, granted on ``database``, or ``{role, db}`` documents) with ``createUser``.

    Logs in as ``username``/``password`` (see ``mongodb_user``); before any user exists, through
    MongoDB's localhost exception, which allows exactly one thing: creating the first user in
    ``admin`` (so that one must be the user the later logins use). Returns ``{name, database,
    roles}``; the password is never returned nor logged.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_user_create admin "$PW" '[{"role": "root", "db": "admin"}]'
        salt-call webstack.mongodb_user_create webstack "$PW" '["readWrite"]' database=webstack
    """
    docs = _role_docs(roles, database)

    def create(client, _bootstrap):
        client[database].command("createUser", name, pwd=passwd, roles=docs)
        return {"name": name, "database": database, "roles": docs}

    return _mongo_users(create, host, port, username, password)


def mongodb_user_update(
    name,
    database="admin",
    *,
    passwd=None,
    roles=None,
    host=None,
    port=None,
    username=None,
    password=None,
):
    """
    Change the password (``passwd``) and/or replace the roles (``roles``, as for
    ``mongodb_user_create``) of the existing MongoDB user ``name`` with ``updateUser``. Returns
    what was changed (``password``: True, ``roles``: the new roles); never the password.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_user_update webstack database=webstack roles='["readWrite"]'
    """
    fields = {}
    if passwd is not None:
        fields["pwd"] = passwd
    if roles is not None:
        fields["roles"] = _role_docs(roles, database)
    if not fields:
        raise CommandExecutionError("nothing to update: pass passwd and/or roles")

    def update(client, bootstrap):
        if bootstrap:
            raise CommandExecutionError(f"no user exists yet: {name}@{database} cannot be updated")
        client[database].command("updateUser", name, **fields)
        return {
            "name": name,
            "database": database,
            "password": "pwd" in fields,
            "roles": fields.get("roles"),
        }

    return _mongo_users(update, host, port, username, password)


def mongodb_login(name, passwd, database="admin", *, host=None, port=None):
    """
    Whether MongoDB accepts the login of user ``name`` (of ``database``) with ``passwd``: True,
    or False when it answers AuthenticationFailed (wrong password or no such user). Any other
    failure (mongod unreachable...) raises an error.

    CLI Example:

    .. code-block:: bash

        salt-call webstack.mongodb_login webstack "$PW" database=webstack
    """
    host, port, _, _ = _mongo_defaults(host, port, None, None)
    client = _mongo_client(host, port, name, passwd, auth_source=database)
    try:
        client[database].command("ping")
        return True
    except pymongo.errors.OperationFailure as exc:
        if exc.code == _MONGO_AUTH_FAILED:
            return False
        raise CommandExecutionError(f"MongoDB at {host}:{port}: {_mongo_error(exc)}") from exc
    except pymongo.errors.PyMongoError as exc:
        raise CommandExecutionError(f"MongoDB at {host}:{port}: {_mongo_error(exc)}") from exc
    finally:
        client.close()


def _mongodb_health():
    try:
        view = mongodb_replset()
    except CommandExecutionError as exc:
        return {"healthy": False, "ping": False, "error": str(exc)}
    return {
        "ping": True,
        "replica_set": view,
        "healthy": view["initiated"] and view["primary"] is not None,
    }


def _db_health(node, engine=None):
    engine = engine or (node.get("db") or {}).get("engine")
    ports = node.get("ports") or {}
    if engine == "mongodb":
        return dict(_mongodb_health(), engine=engine)
    if engine == "ferretdb" and (node.get("db") or {}).get("cluster"):
        # 3+ db nodes: a Patroni cluster, judged from its members' REST APIs (leader, replicas,
        # lag; unhealthy without a leader or a synchronous standby).
        cluster = __salt__.get("webstack_patroni.cluster")
        if cluster is None:
            return {"engine": engine, "healthy": False, "error": "webstack_patroni not loaded"}
        return dict(cluster(), engine=engine, cluster=True)
    if engine == "ferretdb":
        return dict(_postgresql_health(ports.get("postgresql", 5432)), engine=engine)
    return {"engine": engine, "healthy": False, "error": f"unknown db engine {engine!r}"}


# --------------------------------------------------------------------------------------------------
# Per-role summary
# --------------------------------------------------------------------------------------------------


def _roles(node, role):
    if role:
        roles = [role] if isinstance(role, str) else list(role)
        unknown = [r for r in roles if r not in ("lb", "app", "db")]
        if unknown:
            raise CommandExecutionError(f"role: {unknown[0]!r} is not one of lb, app, db")
        return roles
    return list(node.get("roles") or [])


def backend_health(role=None, socket=None, url=None, app_socket=None, engine=None):
    """
    The health of what this node serves, per role (``{"lb": ..., "app": ..., "db": ...}``):

    - lb: every haproxy frontend, backend and server (status, check, admin state, weight,
      sessions) from the runtime API (``show stat`` + ``show servers state``);
    - app: ``/healthz`` and ``/readyz`` through nginx and directly on gunicorn's socket;
    - db: ``pg_isready``/``psql`` (ferretdb engine) or ping + replica-set members (mongodb).

    role
        Check this role (or list of roles) instead of the topology's roles of this minion.
    socket
        haproxy's admin socket (default ``webstack:lookup:lb:haproxy:admin_socket``).
    url
        nginx's base URL (default ``http://<node address>:<ports.app>``).
    app_socket
        gunicorn's unix socket (default ``webstack:lookup:app:socket``).
    engine
        The db engine (default the topology's ``db.engine``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.backend_health
        salt-call webstack.backend_health role=lb socket=/tmp/admin.sock
    """
    node = _node()
    roles = _roles(node, role)
    result = {}
    if not roles:
        result["comment"] = f"{_self_name(node)} has no role in the topology" + (
            f" ({'; '.join(node.get('errors') or [])})" if node.get("errors") else ""
        )
    for name in roles:
        try:
            if name == "lb":
                result["lb"] = _lb_health(socket)
            elif name == "app":
                result["app"] = _app_health(node, url, app_socket)
            else:
                result["db"] = _db_health(node, engine)
        except CommandExecutionError as exc:
            result[name] = {"healthy": False, "error": str(exc)}
    return result


def _service_names(node, roles):
    engine = (node.get("db") or {}).get("engine")
    names = []
    if "lb" in roles:
        names += [_lookup("lb:haproxy:service"), _lookup("lb:keepalived:service")]
    if "app" in roles:
        names += [_lookup("app:nginx:service"), _lookup("app:supervisor:service")]
        if engine == "ferretdb":
            names.append(_lookup("ferretdb:service"))
    if "db" in roles and (node.get("db") or {}).get("cluster"):
        names += [_pillar("webstack:lookup:patroni:service") or "patroni"]
        names += [_pillar("webstack:lookup:etcd:service") or "etcd"]
    elif "db" in roles:
        names.append(_lookup("mongodb:service" if engine == "mongodb" else "postgresql:service"))
    return names


def services(role=None):
    """
    Whether the role's services run and are enabled: ``{service: {running, enabled}}``
    (lb: haproxy, keepalived; app: nginx, supervisor and its program, ferretdb; db: the engine).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.services
    """
    node = _node()
    roles = _roles(node, role)
    result = {}
    for name in _service_names(node, roles):
        entry = {}
        for key, func in (("running", "service.status"), ("enabled", "service.enabled")):
            try:
                entry[key] = bool(__salt__[func](name))
            except Exception as exc:  # pylint: disable=broad-except
                entry[key] = None
                entry["error"] = str(exc)
        result[name] = entry
    if "app" in roles and salt.utils.path.which("supervisorctl"):
        program = _lookup("app:supervisor:program")
        out = __salt__["cmd.run_all"](
            ["supervisorctl", "status", program], python_shell=False, ignore_retcode=True
        )
        words = out["stdout"].split()
        result[f"{program} (supervisor)"] = {
            "running": len(words) > 1 and words[1] == "RUNNING",
            "enabled": None,
            "status": " ".join(words[1:3]) if len(words) > 1 else out["stderr"].strip(),
        }
    return result


def status(
    *,
    role=None,
    socket=None,
    url=None,
    app_socket=None,
    engine=None,
    vip=None,
    interface=None,
    state_file=None,
    instance=None,
    netns=None,
):
    """
    This node's whole live state: ``vip`` (``vip_owner``), ``backends``
    (``backend_health``), ``services`` and the topology it believes in. ``salt-run
    webstack.status`` gathers it from every minion.

    The keyword arguments are those of ``backend_health`` (``role``, ``socket``, ``url``,
    ``app_socket``, ``engine``) and ``vip_owner`` (``vip``, ``interface``, ``state_file``,
    ``instance``, ``netns``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack.status
    """
    node = _node()
    ret = {
        "node": _self_name(node),
        "roles": _roles(node, role),
        "topology": {
            "valid": node.get("valid", False),
            "errors": node.get("errors") or [],
            "nodes": [n["name"] for n in node.get("nodes") or []],
            "db_nodes": [n["name"] for n in node.get("db_nodes") or []],
            "db_engine": (node.get("db") or {}).get("engine"),
            "vip": (node.get("vip") or {}).get("address"),
        },
        "backends": backend_health(
            role=role, socket=socket, url=url, app_socket=app_socket, engine=engine
        ),
        "services": services(role),
    }
    # Every node answers for the VIP: one that is not an lb but holds it is a problem too.
    try:
        ret["vip"] = vip_owner(
            vip=vip, interface=interface, state_file=state_file, instance=instance, netns=netns
        )
    except CommandExecutionError as exc:
        ret["vip"] = {"owner": False, "vrrp_state": "UNKNOWN", "error": str(exc)}
    return ret
