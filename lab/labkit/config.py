"""Where the lab keeps things, and its topology (validated and derived by webstack_topology)."""

import hashlib
import importlib.util
import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .run import LabError

REPO = Path(__file__).resolve().parents[2]
#: Caches shared across labs and runs, keyed by their inputs; `lab down` keeps them.
CACHE = Path(os.environ.get("LAB_CACHE", "/var/cache/webstack"))
#: Everything a running lab owns on the host; `lab down` removes it.
STATE = Path(os.environ.get("LAB_STATE", "/var/lib/webstack-lab"))
LXCPATH = STATE / "lxc"  # always absolute: a relative lxcpath fails with "Failed to get init pid"
STATE_FILE = STATE / "lab.json"
SITE = REPO / ".lab" / "site"  # git-ignored; mounted read-only at /srv/webstack-site on the master
MASTER_NAME = "master"
DEFAULT_TOPOLOGY = REPO / "topology" / "lab.yaml"
SUITE = "bookworm"


def _topology_module():
    path = REPO / "_modules" / "webstack_topology.py"
    spec = importlib.util.spec_from_file_location("webstack_topology", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Node:
    name: str
    address: str
    roles: list = field(default_factory=list)


@dataclass
class Lab:
    topology_file: Path
    raw: dict
    derived: dict
    bridge: str
    gateway: str
    prefix: int
    master: Node
    nodes: list

    @property
    def containers(self):
        """The master first, then the nodes in topology order."""
        return [self.master, *self.nodes]

    @property
    def vip(self):
        return self.derived["vip"]["address"]

    @property
    def proxy_url(self):
        return f"http://{self.gateway}:3142"

    def node(self, name):
        for node in self.containers:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.containers)
        raise LabError(f"no node {name!r} in {self.topology_file} (nodes: {known})")


def load(topology_file=None):
    """Read, validate and derive the topology (the pillar's rules); fill in the lab's defaults."""
    path = Path(topology_file or os.environ.get("LAB_TOPOLOGY") or DEFAULT_TOPOLOGY).resolve()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read the topology: {exc}") from exc
    module = _topology_module()
    try:
        derived = module.derive(raw)
    except module.TopologyError as exc:
        raise LabError(f"{path}: invalid topology:\n  - " + "\n  - ".join(exc.errors)) from exc
    network = ipaddress.IPv4Network(derived["network"]["cidr"])
    hosts = network.hosts()
    gateway = derived["network"]["gateway"] or str(next(hosts))
    master_address = derived["master"] or str(next(hosts))
    nodes = [Node(n["name"], n["address"], list(n["roles"])) for n in derived["nodes"]]
    taken = {n.address for n in nodes} | {derived["vip"]["address"], master_address}
    if gateway in taken:
        raise LabError(f"{path}: network.gateway {gateway} is also a node, master or VIP address")
    if any(n.name == MASTER_NAME for n in nodes):
        raise LabError(
            f"{path}: a node may not be named {MASTER_NAME!r} (the salt-master container)"
        )
    return Lab(
        topology_file=path,
        raw=raw,
        derived=derived,
        bridge=os.environ.get("LAB_BRIDGE", "wsbr0"),
        gateway=gateway,
        prefix=network.prefixlen,
        master=Node(MASTER_NAME, master_address, ["master"]),
        nodes=nodes,
    )


def digest(*parts):
    """A short hash of the given strings/bytes/paths (file contents): the key of a cache."""
    sha = hashlib.sha256()
    for part in parts:
        data = part.read_bytes() if isinstance(part, Path) else part
        data = data.encode() if isinstance(data, str) else data
        sha.update(hashlib.sha256(data).digest())
    return sha.hexdigest()[:12]


def save_state(lab):
    """Remember what `up` made, so that `down` can undo it even if the topology file changed."""
    STATE.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(
        json.dumps(
            {
                "bridge": lab.bridge,
                "gateway": lab.gateway,
                "topology": str(lab.topology_file),
                "containers": [c.name for c in lab.containers],
            },
            indent=2,
        )
    )


def read_state():
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}
