"""
The VIP of the lb nodes: who holds it (ground truth: the address on a local interface, read with
iproute2), cross-checked with the VRRP state keepalived's notify script records
(``salt/webstack/lb/files/keepalived-notify``), and any other host that answers ARP for it
(a split brain).

Paths and names come from pillar ``webstack:lookup:lb:keepalived`` and the VIP from the topology
(``webstack_topology.node``); every function takes overrides. The parsers are
``_utils/webstack_net.py``.
"""

import logging

import salt.utils.path
import salt.utils.platform
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "webstack_vip"


def __virtual__():
    if not salt.utils.platform.is_linux():
        return (False, "webstack_vip: Linux only (it reads iproute2)")
    if not salt.utils.path.which("ip"):
        return (False, "webstack_vip: the 'ip' command was not found; install iproute2")
    if "webstack_net.parse_ip_addresses" not in __utils__:
        return (False, "webstack_vip: the webstack_net utils module is not synced")
    return __virtualname__


def _net(name):
    return __utils__[f"webstack_net.{name}"]


def _lookup(key):
    return __utils__["webstack_config.lookup"](__pillar__, key)


def parse_vrrp_state(text):
    """
    Parse the JSON object that ``keepalived-notify`` writes: ``{instance, type, state, priority,
    since}``. Raises an error naming what is wrong when the text is not such an object.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_vip.parse_vrrp_state "$(cat /run/webstack/vrrp.json)"
    """
    return _net("parse_vrrp_state")(text)


def parse_ip_addresses(text):
    """
    Parse ``ip -j addr show``: ``{interface: ["10.0.0.1/24", ...]}`` (IPv4 and IPv6).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_vip.parse_ip_addresses "$(ip -j addr show)"
    """
    return _net("parse_ip_addresses")(text)


def parse_arping(text):
    """
    The MAC addresses in iputils ``arping`` replies (``Unicast reply from IP [MAC]  0.6ms``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_vip.parse_arping "$(arping -D -c 2 -I eth0 10.77.0.100)"
    """
    return _net("parse_arping")(text)


def _ip(netns, *args):
    """The stdout of ``ip [-n netns] -j ARGS``; a failure raises with ip's stderr."""
    cmd = ["ip"] + (["-n", netns] if netns else []) + ["-j", *args]
    out = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)
    if out["retcode"] != 0:
        raise CommandExecutionError(f"{' '.join(cmd)} failed: {out['stderr'].strip()}")
    return out["stdout"]


def _read_vrrp_state(path):
    """(data, problem): the notify script's record, or None and why it is missing."""
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_vrrp_state(handle.read()), None
    except FileNotFoundError:
        return None, f"no VRRP state file {path} (keepalived has not run the notify script yet)"
    except (OSError, CommandExecutionError) as exc:
        return None, f"cannot read VRRP state file {path}: {exc}"


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
    # for local addresses on every interface): its own MACs are not a second holder. Without
    # them every reply would read as a second holder (a false split brain): no verdict then.
    try:
        own = _local_macs(netns)
    except CommandExecutionError as exc:
        log.warning("webstack_vip: cannot tell this host's own MACs: %s", exc)
        return None, f"no check for a second VIP holder: {exc}"
    others = [mac for mac in parse_arping(out["stdout"]) if mac not in own]
    log.debug("webstack_vip: arping %s on %s: other holders %s", vip, interface, others)
    return others, None


def _local_macs(netns=None):
    """This host's link-layer addresses (in ``netns``); raises when ``ip -j link`` fails."""
    return _net("parse_link_macs")(_ip(netns, "link", "show"))


def _name_macs(macs, interface, netns, nodes):
    """``[{mac, addresses, node}]`` (see ``webstack_net.name_macs``); without a neighbour table
    (logged) the MACs stay unnamed."""
    if not macs:
        return []
    try:
        neighbours = _net("parse_neighbours")(_ip(netns, "neigh", "show", "dev", interface))
    except CommandExecutionError as exc:
        log.warning("webstack_vip: cannot name the other VIP holders: %s", exc)
        neighbours = []
    return _net("name_macs")(macs, neighbours, nodes)


def _vip_holders(vip, netns):
    """The local interfaces (in ``netns``) that carry the address ``vip``."""
    return _net("holders")(parse_ip_addresses(_ip(netns, "addr", "show")), vip)


def _base(node, vip, interface):
    return {
        "vip": vip,
        "owner": False,
        "interface": interface,
        "vrrp_state": "UNKNOWN",
        "priority": node.get("priority"),
        "lb": "lb" in (node.get("roles") or []),
        "node": __utils__["webstack_config.self_name"](node, __grains__),
        "consistent": True,
        "since": None,
    }


def _check_holders(ret, holders, netns, node):
    """On the holder: the interface, and who else answers ARP for the VIP; the comments."""
    comments = []
    vip, interface = ret["vip"], ret["interface"]
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
    return comments


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

        salt-call webstack_vip.vip_owner
        salt '*' webstack_vip.vip_owner
    """
    node = __utils__["webstack_config.node"](__salt__)
    topo_vip = node.get("vip") or {}
    check_vrrp = "lb" in (node.get("roles") or []) or vip is not None
    ret = _base(node, vip or topo_vip.get("address"), interface or topo_vip.get("interface"))
    vip = ret["vip"]
    if not vip:
        ret["comment"] = "no VIP to look for: the topology has none (pillar webstack:topology)"
        ret["consistent"] = False
        return ret
    netns = netns or __utils__["webstack_config.pillar"](
        __pillar__, "webstack:lookup:lb:keepalived:netns"
    )
    holders = _vip_holders(vip, netns)
    log.debug("webstack_vip: %s is on %s", vip, holders or "no local interface")
    ret["owner"] = bool(holders)
    ret["others"] = None
    comments = _check_holders(ret, holders, netns, node) if holders else []
    if not check_vrrp:
        roles = ", ".join(node.get("roles") or []) or "none"
        ret["consistent"] = not holders
        ret["comment"] = (
            f"{ret['node']} is not an lb node (roles: {roles}): keepalived does not run here"
            + (f"; yet it holds the VIP {vip} on {holders[0]}!" if holders else "")
        )
        return ret
    state_file = state_file or _lookup("lb:keepalived:state_file")
    record, problem = _read_vrrp_state(state_file)
    comments += _net("cross_check_vrrp")(
        ret, record, problem, instance or _lookup("lb:keepalived:instance"), state_file
    )
    if ret["others"]:
        ret["consistent"] = False
    if not comments:
        comments.append(
            f"{'holds' if ret['owner'] else 'does not hold'} the VIP {vip} ({ret['vrrp_state']})"
        )
    ret["comment"] = "; ".join(comments)
    return ret
