"""
Masterless Salt minions over the repository's real state tree, for any topology.

A site dir holds what a master's second pillar/file root would (``topology.yaml``, the secrets,
the local lookup and the FerretDB binary); ``salt/`` and ``pillar/`` come from the checkout.
``support/salt_runner.py`` runs Salt through pytest-salt-factories' ``Loaders`` (which syncs the
custom modules) and renders every managed file exactly as ``file.managed`` would write it.
"""

import ipaddress
import json
import os
import pathlib
import subprocess
import sys

import yaml

from support.site_pki import SitePki

REPO = pathlib.Path(__file__).resolve().parents[2]
SECRETS = {
    # The validation's character set (A-Z a-z 0-9 . _ ~ + / = -, 16+ characters): '/', '+' and
    # '=' still need encoding in the app's URI and quoting nowhere else.
    "stats_password": "stats-Pw-1.long~enough",
    "app_secret_key": "app-key-1-long-enough",
    "db_password": "db/Pw+1=long.enough~",
    "mongodb_keyfile": "c2VjcmV0a2V5ZmlsZWNvbnRlbnRzZm9ydGVzdHM=",
    "mongodb_admin_password": "admin-Pw-1-long-enough",
    # engine ferretdb with 3+ db nodes (Patroni cluster).
    "postgres_superuser_password": "su-Pw_1/long+enough=",
    "postgres_replication_password": "repl-Pw_2/long+enough=",
    "postgres_rewind_password": "rewind-Pw_3/long+enough=",
    "patroni_rest_password": "rest-Pw_4/long+enough=",
}


def make_topology(lbs=2, apps=2, dbs=1, engine="ferretdb", cidr="10.88.0.0/24"):
    """A valid topology with the given number of nodes per role, addresses counted from .11."""
    net = ipaddress.IPv4Network(cidr)
    hosts = iter(net.hosts())
    master = next(hosts)
    nodes = []
    for role, count in (("lb", lbs), ("app", apps), ("db", dbs)):
        for index in range(1, count + 1):
            nodes.append({"name": f"{role}{index}", "address": str(next(hosts)), "roles": [role]})
    return {
        "name": f"t{lbs}{apps}{dbs}",
        "master": {"address": str(master)},
        "network": {"cidr": cidr},
        "vip": {"address": str(net.broadcast_address - 1), "interface": "eth0", "router_id": 51},
        "db": {"engine": engine},
        "nodes": nodes,
    }


def ferretdb_binary():
    path = os.environ.get("WEBSTACK_FERRETDB_BIN", "/var/cache/webstack/ferretdb-v1.24.2/ferretdb")
    assert os.path.exists(path), f"FerretDB binary missing at {path}: run scripts/ensure-ferretdb"
    return path


def _addresses(topology):
    """Every valid address of a topology, valid or not (the nodes' and the VIP)."""
    if not isinstance(topology, dict):
        return []
    nodes = topology.get("nodes") if isinstance(topology.get("nodes"), list) else []
    vip = topology.get("vip") if isinstance(topology.get("vip"), dict) else {}
    found = []
    for value in [n.get("address") for n in nodes if isinstance(n, dict)] + [vip.get("address")]:
        try:
            found.append(str(ipaddress.ip_address(str(value))))
        except ValueError:
            continue
    return found


class StateTree:
    """One site (topology + secrets + lookup) on disk, run by masterless minions of any id.

    Each call runs ``support/salt_runner.py`` in a fresh process (Salt's loader state is per
    process), against the repository's real ``salt/`` and ``pillar/``.
    """

    def __init__(self, base, topology, secrets=SECRETS, lookup=None):
        self.base = pathlib.Path(base)
        self.topology = topology
        site = self.base / "site"
        (site / "files" / "ferretdb").mkdir(parents=True)
        (site / "topology.yaml").write_text(yaml.safe_dump(topology))
        if secrets is not None:
            (site / "webstack_secrets.sls").write_text(
                yaml.safe_dump({"webstack": {"secrets": secrets}})
            )
        # A node's TLS files (the CA minion would issue them): one test certificate naming every
        # address of the topology, so configs that load it (haproxy -c) and the edge sandbox's
        # TLS clients meet a real one.
        self.pki = SitePki(self.base / "pki")
        # (127.0.0.1 too: the loopback Patroni cluster's etcd members connect from it, and etcd
        # checks a peer's address against its certificate.)
        identity = self.pki.issue("node", addresses=[*_addresses(topology), "127.0.0.1"])
        local = {
            "ferretdb": {"source": "salt://ferretdb/ferretdb"},
            "pki": {
                "dir": str(self.pki.dir),
                "ca_cert": str(self.pki.ca),
                "cert": str(identity.cert),
                "key": str(identity.key),
            },
        }
        for key, value in (lookup or {}).items():  # one level deep: pki keeps the test files
            local[key] = {**local[key], **value} if key in local else value
        self.lookup = local
        (site / "webstack_local.sls").write_text(yaml.safe_dump({"webstack": {"lookup": local}}))
        os.symlink(ferretdb_binary(), site / "files" / "ferretdb" / "ferretdb")
        self.site = site
        root = self.base / "minion"
        root.mkdir()
        self.config = root / "minion"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "id": "unset",
                    "file_client": "local",
                    "root_dir": str(root),
                    # Outside the cachedir: Loaders wipes the cachedir after syncing.
                    "extension_modules": str(root / "extmods"),
                    "file_roots": {"base": [str(REPO / "salt"), str(site / "files")]},
                    "pillar_roots": {"base": [str(REPO / "pillar"), str(site)]},
                    "log_level_logfile": "warning",
                }
            )
        )
        self._rendered = None

    def _run(self, *args):
        proc = subprocess.run(
            [
                sys.executable,
                str(pathlib.Path(__file__).with_name("salt_runner.py")),
                str(self.config),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        marker = "\n@@RESULT@@"
        if proc.returncode != 0 or marker not in proc.stdout:
            raise AssertionError(
                f"salt_runner {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        return json.loads(proc.stdout.split(marker, 1)[1])

    def rendered(self):
        """{minion: {highstate_ids, sls, files: {path: [text, check_cmd]}}} for every node."""
        if self._rendered is None:
            self._rendered = self._run("render", json.dumps(self.topology["nodes"]))
        return self._rendered

    def rendered_files(self, minion_id):
        return {path: tuple(v) for path, v in self.rendered()[minion_id]["files"].items()}

    def pillar(self, *minions):
        """{minion: its compiled pillar}; ``"ID=OTHER"`` compiles ID's with ``OTHER`` as its
        ``id`` grain."""
        return self._run("pillar", *minions)

    def show_sls(self, minion_id, *names):
        """{sls: state.show_sls(sls)} on the minion: {state id: {module: [function, args...]}}."""
        return self._run("show_sls", minion_id, *names)

    def apply(self, minion_id, sls=None, test=True):
        """state.apply (test mode unless test=False) -> {state id: {result, comment, changes}}."""
        args = ["apply", minion_id] + ([sls] if sls else []) + ([] if test else ["--no-test"])
        return self._run(*args)
