"""An intruder on the lab bridge: a container with no role, outside the topology, for attack tests.

It is a clone of the running lab's node template (so it has the template's Python and Salt in
/opt/salt) at the highest host address of the lab network, which no topology entry may use. Its
salt-minion (and salt-master) units are masked: nothing configures it, and the master never
accepts a key for it. Tools the attacks need come from the host, run in its network namespace
(:func:`netns`), or from the template's Python (:func:`attach`).

`lab intruder up|down|status` drives it; `lab down` removes it with every other container in the
lab's lxcpath, and `lab up` (converging the topology) removes it too: it is not in the topology.
"""

import ipaddress
import secrets

from . import lxc
from .config import MASTER_NAME, Node
from .run import LabError, sh

NAME = "intruder"
#: Its LXC config says what it is (a `lab up` prunes it: it is no topology node).
MARKER = "# lab intruder: no role, not in the topology, no Salt minion\n"
#: Units of the template it must never run.
MASKED = ("salt-minion.service", "salt-master.service")


def address(lab):
    """The intruder's address: the network's highest host address, refused when it is taken.

    "Taken" is any address the topology gives (master, nodes, VIP, gateway) or one the host
    already has on the lab bridge.
    """
    network = ipaddress.IPv4Network(lab.derived["network"]["cidr"])
    if network.num_addresses < 4:
        raise LabError(f"network {network} has no room for an intruder")
    candidate = str(network.broadcast_address - 1)
    users = {c.address: c.name for c in lab.containers}
    users[lab.vip] = "vip.address"
    users[lab.gateway] = "network.gateway"
    if candidate in users:
        raise LabError(
            f"the intruder's address {candidate} (the highest host address of {network}) is "
            f"used by the topology ({users[candidate]}): the intruder needs it free"
        )
    if any(c.name == NAME for c in lab.containers):
        raise LabError(f"the topology has a node named {NAME!r}: the intruder needs that name")
    return candidate


def _bridge_addresses(lab):
    out = sh(["ip", "-4", "-o", "addr", "show", "dev", lab.bridge], check=False, capture=True)
    words = (out or "").split()
    return {words[i + 1].split("/")[0] for i, word in enumerate(words) if word == "inet"}


def _template():
    """The template the running lab's master is cloned from (the intruder uses the same)."""
    config = lxc.cdir(MASTER_NAME) / "config"
    if lxc.state(MASTER_NAME) != "RUNNING" or not config.exists():
        raise LabError("no lab is running (its salt-master is not): run `lab up` first")
    for line in config.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "lxc.rootfs.path":
            lower = value.strip().split(":")[1]  # overlay:<template>/rootfs:<delta>
            return lower[: -len("/rootfs")]
    raise LabError(f"{config}: no lxc.rootfs.path")


def _seed(lab, node):
    lxc.put(NAME, "etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
    lxc.put(NAME, "etc/hostname", NAME + "\n")
    hosts = ["127.0.0.1 localhost", f"{node.address} {NAME}"]
    hosts += [f"{c.address} {c.name}" for c in lab.containers]
    lxc.put(NAME, "etc/hosts", "\n".join(hosts) + "\n")
    # Packages, if an attack ever needs one, come only through the lab's apt proxy.
    lxc.put(NAME, "etc/apt/apt.conf.d/01lab-proxy", f'Acquire::http::Proxy "{lab.proxy_url}";\n')
    for unit in MASKED:
        lxc.symlink(NAME, f"etc/systemd/system/{unit}", "/dev/null")


def up(lab):
    """Create (if missing) and start the intruder; return its address. Idempotent."""
    where = address(lab)
    template = _template()
    node = Node(NAME, where, [])
    text = lxc.config_text(lab, node, template) + MARKER
    config = lxc.cdir(NAME) / "config"
    if lxc.exists(NAME) and config.read_text() != text:
        lxc.destroy(NAME)
    if not lxc.exists(NAME):
        if where in _bridge_addresses(lab):
            raise LabError(
                f"the host has {where} on {lab.bridge} (a test's client address?): remove it first"
            )
        lxc.write_config(NAME, text)
        _seed(lab, node)
    if lxc.state(NAME) == "FROZEN":
        lxc.unfreeze(NAME)
    if lxc.state(NAME) != "RUNNING":
        lxc.start(NAME)
    lxc.wait_booted(NAME)
    return where


def down():
    """Remove the intruder (container dir, veth); True when there was one."""
    if not lxc.exists(NAME):
        return False
    lxc.destroy(NAME)
    veth = lxc.veth_name(NAME)
    if sh(["ip", "link", "show", veth], check=False, quiet=True).returncode == 0:
        sh(["ip", "link", "del", veth], check=False, quiet=True)
    return True


def status(lab):
    """``(state, address, init pid)``; the address is what it has (or would get)."""
    return lxc.state(NAME), address(lab), lxc.init_pid(NAME)


def netns_args(*command):
    """``nsenter`` arguments that run a host command in the intruder's network namespace."""
    pid = lxc.init_pid(NAME)
    if pid is None:
        raise LabError("the intruder is not running: `lab intruder up` first")
    return ["nsenter", "-t", str(pid), "-n", *command]


def attach(*command, check=False, capture=True, stdin=None, timeout=None):
    """A command inside the intruder (its own filesystem: the template's tools, /opt/salt)."""
    return lxc.attach(NAME, *command, check=check, capture=capture, stdin=stdin, timeout=timeout)
