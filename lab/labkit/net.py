"""The lab's private bridge: the gateway address on it; no NAT, no forwarding, no route out."""

import socket

from .run import say, sh


def _exists(bridge):
    return sh(["ip", "link", "show", "dev", bridge], check=False, quiet=True).returncode == 0


def bridge_up(lab):
    """Create (or converge) the bridge with exactly ``gateway/prefix``; idempotent."""
    bridge, address = lab.bridge, f"{lab.gateway}/{lab.prefix}"
    if not _exists(bridge):
        sh(["ip", "link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
        say(f"    created bridge {bridge}")
    current = sh(["ip", "-4", "-o", "addr", "show", "dev", bridge], capture=True).split()
    addresses = [current[i + 1] for i, word in enumerate(current) if word == "inet"]
    if addresses != [address]:
        sh(["ip", "addr", "flush", "dev", bridge])
        sh(["ip", "addr", "add", address, "dev", bridge])
    sh(["ip", "link", "set", bridge, "up"])
    say(f"    bridge {bridge} {address} (no NAT; nodes get no default route)")


def bridge_down(bridge):
    if _exists(bridge):
        sh(["ip", "link", "del", bridge])
        return True
    return False


def tcp_open(address, port):
    """True when something accepts TCP connections at address:port (a lab address)."""
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False
