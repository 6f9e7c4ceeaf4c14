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
#: The site CA's certificate (public), copied out of the master after it is made: the file to
#: pass to `curl --cacert` or a browser for https://<VIP>/.
CA_FILE = REPO / ".lab" / "ca.crt"
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
    #: The --nodes/LAB_NODES spec that scaled the file's topology (None: the file's nodes).
    spec: str = None

    @property
    def scaled(self):
        return bool(self.spec)

    @property
    def containers(self):
        """The master first, then the nodes in topology order."""
        return [self.master, *self.nodes]

    @property
    def vip(self):
        return self.derived["vip"]["address"]

    @property
    def ca_minion(self):
        """The master container's own minion: the site CA (the topology's master.minion_id)."""
        return self.derived["pki"]["ca_minion"]

    @property
    def minions(self):
        """Every minion id the master accepts: the CA minion, then the nodes in topology order."""
        return [self.ca_minion, *(n.name for n in self.nodes)]

    @property
    def proxy_url(self):
        return f"http://{self.gateway}:3142"

    def node(self, name):
        for node in self.containers:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.containers)
        raise LabError(f"no node {name!r} in {self.topology_file} (nodes: {known})")


def load(topology_file=None, nodes=None, *, env=False, reread=False):
    """The lab to work on: the running one (as `up` saved it) or, with none running, the topology.

    With a lab running (``STATE_FILE`` exists) its saved topology is the lab, whatever the file says
    now; a ``topology_file``/``nodes`` given that makes a different topology is a LabError. With
    ``env`` (the CLI), ``$LAB_TOPOLOGY``/``$LAB_NODES`` are checked the same way; without it they
    are ignored while a lab runs (a script may set them for its next `lab up` before `lab down`).
    With ``reread`` (`up`, which writes the site dir from the file), the running lab's file itself
    must still make the saved topology. With no lab running: ``topology_file`` or
    ``$LAB_TOPOLOGY`` or the default, scaled by ``nodes`` or ``$LAB_NODES``.
    """
    saved = running()
    if saved is None:
        path, spec, _ = _requested(topology_file, nodes, True, DEFAULT_TOPOLOGY)
        return from_file(path, spec)
    lab = _build(
        Path(saved["topology"]),
        saved["raw"],
        saved.get("nodes"),
        saved["bridge"],
        f"{STATE_FILE} (the running lab's topology, from {saved['topology']})",
    )
    path, spec, asked = _requested(topology_file, nodes, env, lab.topology_file, lab.spec)
    if asked or reread:
        raw = _read_topology(path)
        if spec:
            raw = scale(raw, spec)
        if _normalised(raw) != _normalised(lab.raw):
            changed = path == lab.topology_file and (spec or None) == (lab.spec or None)
            raise LabError(
                f"the running lab was brought up from {_describe(lab)}; "
                f"{' '.join(asked) or _shown(path)} differs"
                f"{' (the file changed since)' if changed else ''}: run `lab down` first"
            )
    return lab


def other_lab(topology_file=None, nodes=None):
    """The running lab's topology file when it is not ``topology_file`` (default: $LAB_TOPOLOGY or
    the default) scaled by ``nodes`` (default: $LAB_NODES): another topology or size, or another
    checkout's file (whose salt tree that lab's master serves). None when none runs or it is
    that one."""
    saved = running()
    if saved is None:
        return None
    wanted = Path(topology_file or os.environ.get("LAB_TOPOLOGY") or DEFAULT_TOPOLOGY).resolve()
    spec = nodes or os.environ.get("LAB_NODES") or None
    same = Path(saved["topology"]) == wanted and (saved.get("nodes") or None) == spec
    return None if same else saved["topology"]


def from_file(topology_file, nodes=None):
    """The lab of a topology file scaled by a nodes spec, whatever lab runs (no state read)."""
    path = Path(topology_file).resolve()
    raw = _read_topology(path)
    bridge = os.environ.get("LAB_BRIDGE", "wsbr0")
    return _build(path, scale(raw, nodes) if nodes else raw, nodes, bridge, str(path))


def _shown(path):
    """A path as the user would write it: relative to the repo when inside it."""
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def _describe(lab):
    scaled = f" --nodes {lab.spec}" if lab.spec else ""
    return f"{_shown(lab.topology_file)}{scaled} ({len(lab.nodes)} nodes)"


def _requested(topology_file, nodes, env, default_path, default_spec=None):
    """(path, nodes spec, how they were asked for: e.g. ``["--topology topology/lab.yaml"]``).

    What is not asked for (by argument, or by environment with ``env``) is the default: the
    default topology, or with a lab running its file and its nodes spec.
    """
    asked = []
    path, spec = default_path, default_spec
    env_topology = os.environ.get("LAB_TOPOLOGY") if env else None
    env_nodes = os.environ.get("LAB_NODES") if env else None
    if topology_file:
        path = Path(topology_file).resolve()
        asked.append(f"--topology {topology_file}")
    elif env_topology:
        path = Path(env_topology).resolve()
        asked.append(f"LAB_TOPOLOGY={env_topology}")
    if nodes:
        spec = nodes
        asked.append(f"--nodes {nodes}")
    elif env_nodes:
        spec = env_nodes
        asked.append(f"LAB_NODES={env_nodes}")
    elif asked:
        spec = None  # another file asked for, no node counts: the file's nodes
    return Path(path).resolve(), spec or None, asked


def _normalised(raw):
    """The topology as JSON has it (as the state file keeps it), to compare two of them."""
    return json.loads(json.dumps(raw, default=str))


def _read_topology(path):
    import yaml  # only here: `lab down` works without PyYAML

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read the topology: {exc}") from exc


def _build(path, raw, spec, bridge, source):
    """Validate and derive ``raw`` (the pillar's rules); fill in the lab's defaults."""
    module = _topology_module()
    try:
        derived = module.derive(raw)
    except module.TopologyError as exc:
        raise LabError(f"{source}: invalid topology:\n  - " + "\n  - ".join(exc.errors)) from exc
    network = ipaddress.IPv4Network(derived["network"]["cidr"])
    first, second = itertools.islice(network.hosts(), 2)
    gateway = derived["network"]["gateway"] or str(first)
    master_address = derived["master"] or str(second)
    members = [Node(n["name"], n["address"], list(n["roles"])) for n in derived["nodes"]]
    taken = {n.address for n in members} | {derived["vip"]["address"], master_address}
    if gateway in taken:
        raise LabError(f"{source}: network.gateway {gateway} is also a node, master or VIP address")
    if any(n.name == MASTER_NAME for n in members):
        raise LabError(
            f"{source}: a node may not be named {MASTER_NAME!r} (the salt-master container)"
        )
    return Lab(
        topology_file=Path(path).resolve(),
        raw=raw,
        derived=derived,
        bridge=bridge,
        gateway=gateway,
        prefix=network.prefixlen,
        master=Node(MASTER_NAME, master_address, ["master"]),
        nodes=members,
        spec=spec or None,
    )


def digest(*parts):
    """A short hash of the given strings/bytes/paths (file contents): the key of a cache."""
    sha = hashlib.sha256()
    for part in parts:
        data = part.read_bytes() if isinstance(part, Path) else part
        data = data.encode() if isinstance(data, str) else data
        sha.update(hashlib.sha256(data).digest())
    return sha.hexdigest()[:12]


#: The format of STATE_FILE; another (an older `lab up`'s) is refused with "run `lab down`".
STATE_VERSION = 2


def save_state(lab):
    """Remember what `up` made: the lab itself for every later command (the topology as scaled,
    whatever the file says later), and what `down` undoes even without PyYAML."""
    STATE.mkdir(parents=True, exist_ok=True)
    state = {
        "version": STATE_VERSION,
        "bridge": lab.bridge,
        "gateway": lab.gateway,
        "topology": str(lab.topology_file),
        "nodes": lab.spec,
        "containers": [c.name for c in lab.containers],
        "raw": lab.raw,
    }
    temporary = STATE_FILE.with_name(STATE_FILE.name + ".tmp")
    temporary.write_text(json.dumps(state, indent=2, default=str) + "\n", encoding="utf-8")
    temporary.replace(STATE_FILE)  # never half a file: a later command would refuse it


def running():
    """The running lab's saved state, or None when there is none (no STATE_FILE: no lab up)."""
    hint = "run `lab down` (it needs only the bridge and container names) and `lab up` again"
    try:
        state = json.loads(STATE_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(
            f"{STATE_FILE}: cannot read the running lab's state ({exc}): {hint}"
        ) from exc
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        found = state.get("version", "none") if isinstance(state, dict) else type(state).__name__
        raise LabError(
            f"{STATE_FILE}: not a lab state of this `lab` (format {found}, expected "
            f"{STATE_VERSION}; an older `lab up` wrote it?): {hint}"
        )
    kinds = {"topology": str, "bridge": str, "raw": dict, "nodes": (str, type(None))}
    wrong = [key for key, kind in kinds.items() if not isinstance(state.get(key), kind)]
    if wrong:
        raise LabError(
            f"{STATE_FILE}: corrupt lab state ({', '.join(wrong)} missing/wrong): {hint}"
        )
    return state


def read_state():
    """The saved state as far as it is readable ({} if not): `down` works from it whatever it is."""
    try:
        state = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}
