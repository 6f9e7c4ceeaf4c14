"""The Vagrantfile, run by Debian's real `vagrant validate -p` (no provider needed): it validates
for every shipped topology, defines exactly the topology's machines (the plan it writes when
WEBSTACK_VAGRANT_PLAN is set is read back from the machines' own config), stops on a bad topology
with the project's validation message, and hands the VMs keys and a site dir that the bootstrap
scripts install as they install the lab's."""

import base64
import copy
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys

import pytest
import yaml
from support.salt_modules import load
from support.state_tree import REPO

topo = load("_modules", "webstack_topology")
rules = load("_utils", "webstack_topology_rules")

SHIPPED = sorted((REPO / "topology").glob("*.yaml"))
SEED = yaml.safe_load((REPO / "topology" / "seed.yaml").read_text())


@pytest.fixture(scope="module")
def vagrant(tmp_path_factory):
    """Run `vagrant validate -p` on the repository's Vagrantfile with an isolated HOME and state;
    returns (process, plan or None)."""
    if shutil.which("vagrant") is None:
        pytest.fail("vagrant is not installed (scripts/bootstrap-dev installs Debian's)", False)
    base = tmp_path_factory.mktemp("vagrant")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBSTACK_", "VAGRANT_"))}
    env.update(
        HOME=str(base / "home"),
        VAGRANT_HOME=str(base / "vagrant.d"),
        VAGRANT_DOTFILE_PATH=str(base / "dotfile"),
        VAGRANT_CHECKPOINT_DISABLE="1",
        VAGRANT_CWD=str(REPO),
        WEBSTACK_PYTHON=sys.executable,
        WEBSTACK_VAGRANT_DIR=str(base / "state"),
    )
    (base / "home").mkdir()
    runs = iter(range(1000))

    def validate(topology=None, **extra):
        plan = base / f"plan-{next(runs)}.json"
        run_env = dict(env, WEBSTACK_VAGRANT_PLAN=str(plan), **extra)
        if topology is not None:
            run_env["WEBSTACK_TOPOLOGY"] = str(topology)
        proc = subprocess.run(
            ["vagrant", "validate", "-p"],
            cwd=REPO,
            env=run_env,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return proc, json.loads(plan.read_text()) if plan.exists() else None

    validate.state = base / "state"
    return validate


def write_topology(tmp_path, data, name="topology.yaml"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
    return path


def machines(plan):
    return [(m["name"], m["address"], m["roles"]) for m in plan["machines"]]


def expected_machines(topology):
    cluster = topo.derive(topology)
    nodes = [(n["name"], n["address"], n["roles"]) for n in cluster["nodes"]]
    return [("master", cluster["master"], ["master"]), *nodes]


def step(machine, name):
    return next(p for p in machine["provision"] if p["name"] == name)


def script_args(machine, script):
    """The arguments the machine's provisioner passes to bootstrap/SCRIPT."""
    inline = step(machine, "webstack-salt")["inline"].replace("\\\n", " ")
    line = next(line for line in inline.splitlines() if f"bootstrap/{script} " in line)
    words = shlex.split(line)
    return words[words.index(f"bootstrap/{script}") + 1 :]


def provision(upload, machine, script, root):
    """Run the machine's upload's bootstrap/SCRIPT as its provisioner does, with ``--root root``
    instead of ``--restart``; returns ``root``."""
    root.mkdir()
    args = [a for a in script_args(machine, script) if a != "--restart"]
    subprocess.run([upload / "bootstrap" / script, "--root", root, *args], cwd=upload, check=True)
    return root


def test_no_address_is_typed_in_the_vagrantfile():
    text = (REPO / "Vagrantfile").read_text()
    assert re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text) == []
    assert "webstack_topology.py" in text


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_validates_and_defines_exactly_the_topologys_machines(vagrant, path):
    proc, plan = vagrant(path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Vagrantfile validated successfully." in proc.stdout
    topology = yaml.safe_load(path.read_text())
    assert machines(plan) == expected_machines(topology)
    cluster = topo.derive(topology)
    assert plan["vip"] == cluster["vip"]["address"]
    master, *nodes = plan["machines"]
    for machine in plan["machines"]:
        assert machine["hostname"] == machine["name"]
        assert [p["name"] for p in machine["provision"]] == [
            "webstack-clean",
            "webstack-upload",
            "webstack-salt",
        ]
    # The master listens on master.address and accepts exactly the topology's minions.
    args = script_args(master, "configure-master")
    assert args[args.index("--interface") + 1] == cluster["master"]
    accepted = [args[i + 1] for i, word in enumerate(args) if word == "--accept"]
    assert accepted == [n["name"] for n in cluster["nodes"]]
    assert "packages" in script_args(master, "install-salt")
    for machine in nodes:
        args = script_args(machine, "configure-minion")
        assert args[args.index("--id") + 1] == machine["name"]
        assert args[args.index("--master") + 1] == cluster["master"]
        install = script_args(machine, "install-salt")
        assert install[:2] == ["packages", "minion"]
        assert re.fullmatch(r"pymongo==[0-9.]+", install[install.index("--pip") + 1])


def test_defaults_and_per_role_overrides_of_box_cpus_and_memory(vagrant, tmp_path):
    topology = copy.deepcopy(SEED)
    # Three db nodes: a replica set of two would have no majority once either is lost.
    topology["nodes"].append({"name": "db2", "address": "192.168.50.32", "roles": ["db"]})
    topology["nodes"].append({"name": "appdb", "address": "192.168.50.40", "roles": ["app", "db"]})
    overrides = {
        "WEBSTACK_BOX": "example/any",
        "WEBSTACK_LB_BOX": "example/lb",
        "WEBSTACK_DB_MEMORY": "3072",
        "WEBSTACK_APP_CPUS": "2",
        "WEBSTACK_MASTER_MEMORY": "1536",
    }
    # A JSON topology takes the same path (JSON is YAML).
    proc, plan = vagrant(write_topology(tmp_path, topology, "topology.json"), **overrides)
    assert proc.returncode == 0, proc.stderr
    assert machines(plan) == expected_machines(topology)
    sizes = {m["name"]: (m["box"], m["cpus"], m["memory"]) for m in plan["machines"]}
    assert sizes == {
        "master": ("example/any", 1, 1536),
        "lb1": ("example/lb", 1, 512),
        "lb2": ("example/lb", 1, 512),
        "app1": ("example/any", 2, 768),
        "app2": ("example/any", 2, 768),
        "db1": ("example/any", 1, 3072),
        "db2": ("example/any", 1, 3072),
        "appdb": ("example/any", 2, 3072),
    }


def test_the_default_topology_is_the_seed_and_the_box_debian_12(vagrant):
    proc, plan = vagrant()
    assert proc.returncode == 0, proc.stderr
    assert plan["topology"] == str(REPO / "topology" / "seed.yaml")
    assert {m["box"] for m in plan["machines"]} == {"debian/bookworm64"}


BAD = {
    "duplicate-address": (
        lambda t: t["nodes"][3].update(address=t["nodes"][2]["address"]),
        "nodes[3].address: duplicate address 192.168.50.21 (also nodes[2].address)",
    ),
    "vip-outside-subnet": (
        lambda t: t["vip"].update(address="10.1.2.3"),
        "vip.address",
    ),
    "unknown-key": (lambda t: t["nodes"][0].update(rolse=["lb"]), "nodes[0].rolse"),
    "no-app-node": (
        lambda t: t.update(nodes=[n for n in t["nodes"] if "app" not in n["roles"]]),
        "nodes",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_topology_fails_validation_naming_the_key(vagrant, tmp_path, case):
    change, message = BAD[case]
    topology = copy.deepcopy(SEED)
    change(topology)
    expected = rules.problems(topology)
    assert expected, "the case must be invalid by the project's own rules"
    path = write_topology(tmp_path, topology)
    proc, plan = vagrant(path)
    assert proc.returncode != 0
    assert f"{path}: invalid topology:" in proc.stderr
    assert message in proc.stderr
    for error in expected:  # the very lines of the one validation, none rewritten
        assert f"  - {error}" in proc.stderr
    assert plan is None
    assert "Traceback" not in proc.stderr


def test_without_pyyaml_the_topology_reaches_the_cli_as_json(vagrant, tmp_path):
    topology = copy.deepcopy(SEED)
    BAD["duplicate-address"][0](topology)
    path = write_topology(tmp_path, topology)
    # -S: no site-packages, so no PyYAML: Ruby's YAML parser converts the file for the CLI.
    proc, _ = vagrant(path, WEBSTACK_PYTHON=f"{sys.executable} -S")
    assert proc.returncode != 0
    assert f"{path}: invalid topology:" in proc.stderr
    assert BAD["duplicate-address"][1] in proc.stderr
    proc, plan = vagrant(REPO / "topology" / "seed.yaml", WEBSTACK_PYTHON=f"{sys.executable} -S")
    assert proc.returncode == 0, proc.stderr
    assert machines(plan) == expected_machines(SEED)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.pop("master"), "master.address: required by the Vagrantfile"),
        (lambda t: t["nodes"][0].update(name="master"), "nodes[0].name: 'master'"),
    ],
    ids=["no-master-address", "node-named-master"],
)
def test_what_only_vms_need_is_checked_too(vagrant, tmp_path, change, message):
    topology = copy.deepcopy(SEED)
    change(topology)
    assert rules.problems(topology) == []
    proc, _ = vagrant(write_topology(tmp_path, topology))
    assert proc.returncode != 0
    assert message in proc.stderr


@pytest.fixture(scope="module")
def seeded(vagrant):
    """The state dir after a run on the seed topology."""
    proc, plan = vagrant(REPO / "topology" / "seed.yaml")
    assert proc.returncode == 0, proc.stderr
    return vagrant.state, plan


def test_random_secrets_satisfy_the_rules_and_are_generated_once(vagrant, seeded):
    state, _ = seeded
    path = state / "site" / "webstack_secrets.sls"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secrets = yaml.safe_load(path.read_text())["webstack"]["secrets"]
    example = yaml.safe_load((REPO / "pillar" / "webstack_secrets.sls.example").read_text())
    assert list(secrets) == list(example["webstack"]["secrets"])
    assert topo.validate(SEED, secrets)["valid"], topo.validate(SEED, secrets)
    assert len(base64.b64decode(secrets["mongodb_keyfile"])) == 48
    assert len(set(secrets.values())) == len(secrets)
    before = path.read_text()
    proc, _ = vagrant(REPO / "topology" / "seed.yaml")
    assert proc.returncode == 0, proc.stderr
    assert path.read_text() == before
    assert (state / "site" / "topology.yaml").read_bytes() == (
        REPO / "topology" / "seed.yaml"
    ).read_bytes()


def test_a_given_secrets_file_and_local_file_are_used(vagrant, tmp_path):
    given = tmp_path / "mine.sls"
    given.write_text("webstack:\n  secrets:\n    stats_password: mine\n")
    local = tmp_path / "local.sls"
    local.write_text("webstack:\n  lookup: {}\n")
    proc, _ = vagrant(WEBSTACK_SECRETS=str(given), WEBSTACK_LOCAL=str(local))
    assert proc.returncode == 0, proc.stderr
    site = vagrant.state / "site"
    assert (site / "webstack_secrets.sls").read_text() == given.read_text()
    assert (site / "webstack_local.sls").read_text() == local.read_text()
    proc, _ = vagrant(WEBSTACK_SECRETS=str(tmp_path / "missing.sls"))
    assert proc.returncode != 0
    assert "WEBSTACK_SECRETS=" in proc.stderr and "no such file" in proc.stderr


def test_keys_are_salts_format_and_each_vm_gets_only_its_own(seeded):
    salt_crypt = pytest.importorskip("salt.crypt")
    state, plan = seeded
    names = [m["name"] for m in plan["machines"]]
    keys = state / "pki"
    for name in names:
        pem, pub = keys / f"{name}.pem", keys / f"{name}.pub"
        assert pem.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----\n")
        assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----\n")
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600
        private = salt_crypt.PrivateKey.from_file(str(pem))
        public = salt_crypt.PublicKey.from_file(str(pub))
        assert public.verify(b"webstack", private.sign(b"webstack"))
    upload = state / "upload"
    master_keys = sorted(p.name for p in (upload / "master" / "pki").iterdir())
    assert master_keys == sorted(["master.pem", "master.pub", *(f"{n}.pub" for n in names[1:])])
    for name in names[1:]:
        own = sorted(p.name for p in (upload / name / "pki").iterdir())
        assert own == sorted([f"{name}.pem", f"{name}.pub", "master.pub"])
        assert not (upload / name / "site").exists()


def test_the_uploads_provision_through_the_bootstrap_scripts(seeded, tmp_path):
    """Each VM's provisioner, run with --root instead of --restart: what lands on the master and
    on a node is what the lab's containers get."""
    state, plan = seeded
    master, *nodes = plan["machines"]
    upload = state / "upload" / "master"
    root = provision(upload, master, "configure-master", tmp_path / "master")
    accepted = sorted(p.name for p in (root / "etc/salt/pki/master/minions").iterdir())
    assert accepted == sorted(n["name"] for n in nodes)
    site = root / "srv/webstack-site"
    assert (site / "topology.yaml").read_bytes() == (REPO / "topology/seed.yaml").read_bytes()
    assert stat.S_IMODE((site / "webstack_secrets.sls").stat().st_mode) == 0o640
    conf = yaml.safe_load((root / "etc/salt/master.d/webstack.conf").read_text())
    assert conf["interface"] == master["address"] and conf["auto_accept"] is False
    for node in nodes:
        upload = state / "upload" / node["name"]
        root = provision(upload, node, "configure-minion", tmp_path / node["name"])
        conf = yaml.safe_load((root / "etc/salt/minion.d/webstack.conf").read_text())
        assert (conf["id"], conf["master"]) == (node["name"], master["address"])
        master_pub = root / "etc/salt/pki/minion/minion_master.pub"
        assert master_pub.read_text() == (state / "pki" / "master.pub").read_text()
