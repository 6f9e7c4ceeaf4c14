"""
Parsers of what iproute2, iputils ``arping`` and keepalived's notify script print, and the pure
VIP decisions made from them.

Plain Python (synced by ``saltutil.sync_utils``, reached through ``__utils__``): pure functions,
unit-tested on outputs captured from the real programs.
"""

import ipaddress
import json
import logging
import re

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

VRRP_STATES = ("MASTER", "BACKUP", "FAULT")


def _json(text, what):
    try:
        return json.loads(text or "[]")
    except ValueError as exc:
        raise CommandExecutionError(f"{what} did not print JSON: {exc}") from exc


def parse_ip_addresses(text):
    """``ip -j addr show``: ``{interface: ["10.0.0.1/24", ...]}`` (IPv4 and IPv6)."""
    result = {}
    for link in _json(text, "'ip -j addr'"):
        if "ifname" not in link:
            continue
        result[link["ifname"]] = [
            f"{addr['local']}/{addr.get('prefixlen', 32)}"
            for addr in link.get("addr_info", [])
            if "local" in addr
        ]
    return result


def parse_link_macs(text):
    """``ip -j link show``: the set of this host's link-layer addresses (lower case)."""
    return {str(link.get("address", "")).lower() for link in _json(text, "'ip -j link'")}


def parse_neighbours(text):
    """``ip -j neigh show``: ``[{dst, lladdr, ...}]``."""
    return _json(text, "'ip -j neigh'")


def parse_vrrp_state(text):
    """The JSON object ``keepalived-notify`` writes: ``{instance, type, state, priority,
    since}``; an error naming what is wrong when the text is not such an object."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CommandExecutionError(f"VRRP state is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not {"instance", "state"} <= set(data):
        raise CommandExecutionError(f"VRRP state lacks 'instance'/'state': {text[:120]!r}")
    return data


def parse_arping(text):
    """The MAC addresses in iputils ``arping`` replies (``Unicast reply from IP [MAC]``)."""
    return sorted(
        {mac.lower() for mac in re.findall(r"reply from \S+ \[([0-9A-Fa-f:]{17})\]", text or "")}
    )


def holders(addresses, vip):
    """The interfaces of ``addresses`` (``parse_ip_addresses``) that carry the address ``vip``."""
    try:
        wanted = ipaddress.ip_address(str(vip))
    except ValueError as exc:
        raise CommandExecutionError(f"vip: {vip!r} is not an IP address") from exc
    return [
        ifname
        for ifname, addrs in addresses.items()
        if any(ipaddress.ip_interface(addr).ip == wanted for addr in addrs)
    ]


def name_macs(macs, neighbours, nodes):
    """``[{mac, addresses, node}]``: each MAC with the addresses the neighbour table has for it,
    and the topology node (``[{name, address}]``) owning one of them (None when unknown)."""
    by_address = {n.get("address"): n.get("name") for n in nodes}
    named = []
    for mac in macs:
        addresses = sorted(
            n["dst"] for n in neighbours if str(n.get("lladdr", "")).lower() == mac and "dst" in n
        )
        owner = next((by_address[a] for a in addresses if a in by_address), None)
        named.append({"mac": mac, "addresses": addresses, "node": owner})
    return named


def cross_check_vrrp(ret, record, problem, instance, state_file):
    """
    Fill ``vrrp_state``, ``priority``, ``since`` and ``consistent`` of the ``vip_owner`` answer
    ``ret`` from the notify script's ``record`` (None with the ``problem``); the comments.
    """
    comments = []
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
