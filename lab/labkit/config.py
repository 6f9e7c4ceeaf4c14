"""Where the lab keeps things, and its topology (validated and derived by webstack_topology)."""

import hashlib
import importlib.util
import ipaddress
import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

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


#: Where scaled nodes get their addresses: role n lives at <network> + offset + n (n = 1..9).
SCALE_OFFSETS = {"lb": 10, "app": 20, "db": 30}


def scale(raw, spec):
    """The topology with other node counts: ``spec`` is e.g. ``"app=3"`` or ``"lb=2,app=3,db=1"``.

    Named roles get ``<role>1..<role>N`` at ``.11-.19`` (lb), ``.21-.29`` (app), ``.31-.39`` (db)
    of the network; roles not named keep the file's nodes.
    """
    counts = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        role, _, count = item.partition("=")
        if role not in SCALE_OFFSETS or not count.isdigit() or not 1 <= int(count) <= 9:
            raise LabError(
                f"--nodes {spec!r}: expected ROLE=N with ROLE in lb, app, db and N in 1-9"
            )
        counts[role] = int(count)
    network = ipaddress.IPv4Network(str((raw.get("network") or {}).get("cidr")), strict=False)
    nodes = [n for n in raw.get("nodes", []) if not set(n.get("roles", [])) & set(counts)]
    for role, count in counts.items():
        base = int(network.network_address) + SCALE_OFFSETS[role]
        nodes += [
            {"name": f"{role}{i}", "address": str(ipaddress.IPv4Address(base + i)), "roles": [role]}
            for i in range(1, count + 1)
        ]
    order = {role: index for index, role in enumerate(SCALE_OFFSETS)}
    nodes.sort(key=lambda n: (order.get(n["roles"][0], 9), n["name"]))
    return {**raw, "nodes": nodes}


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
    scaled: bool = False

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


def load(topology_file=None, nodes=None):
    """Read, validate and derive the topology (the pillar's rules); fill in the lab's defaults."""
    import yaml  # only here: `lab down` works without PyYAML

    path = Path(topology_file or os.environ.get("LAB_TOPOLOGY") or DEFAULT_TOPOLOGY).resolve()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read the topology: {exc}") from exc
    spec = nodes or os.environ.get("LAB_NODES")
    if spec:
        raw = scale(raw, spec)
    module = _topology_module()
    try:
        derived = module.derive(raw)
    except module.TopologyError as exc:
        raise LabError(f"{path}: invalid topology:\n  - " + "\n  - ".join(exc.errors)) from exc
    network = ipaddress.IPv4Network(derived["network"]["cidr"])
    first, second = itertools.islice(network.hosts(), 2)
    gateway = derived["network"]["gateway"] or str(first)
    master_address = derived["master"] or str(second)
    members = [Node(n["name"], n["address"], list(n["roles"])) for n in derived["nodes"]]
    taken = {n.address for n in members} | {derived["vip"]["address"], master_address}
    if gateway in taken:
        raise LabError(f"{path}: network.gateway {gateway} is also a node, master or VIP address")
    if any(n.name == MASTER_NAME for n in members):
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
        nodes=members,
        scaled=bool(spec),
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
