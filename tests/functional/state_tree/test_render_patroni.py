"""
The db role with three or more db nodes (engine ferretdb): Patroni + etcd instead of a single
PostgreSQL. Rendered for 3 and 5 db nodes: members, etcd's initial cluster in topology order,
pg_hba admitting exactly the app nodes (app database) and the db nodes (replication, pg_rewind),
no address outside the topology; the configs pass their checks (Patroni's own validator); the
states are wired in the right order; `state.apply test=True` of the role reports no error.
"""

import ipaddress
import re
import shlex
import subprocess

import pytest
import yaml
from support.state_tree import REPO, SECRETS, make_topology

PATRONI = "/etc/patroni/config.yml"
ETCD = "/etc/etcd/webstack.yml"
ETCD_DROPIN = "/etc/systemd/system/etcd.service.d/webstack.conf"
SINGLE_HBA = "/etc/postgresql/15/main/pg_hba.conf"
CHECK_CONFIG = REPO / "salt" / "webstack" / "db" / "files" / "patroni-check-config"
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


def nodes_with(topology, role):
    return [n for n in topology["nodes"] if role in n["roles"]]


@pytest.fixture(scope="module", params=[3, 5], ids=["3-db", "5-db"])
def cluster(request, state_tree):
    topology = make_topology(lbs=1, apps=2, dbs=request.param)
    return topology, state_tree(topology)


def patroni_config(tree, node):
    text, _ = tree.rendered_files(node["name"])[PATRONI]
    return yaml.safe_load(text)


def hba_rules(lines):
    """pg_hba lines -> {(type, database, user, address)} (local lines have no address)."""
    rules = set()
    for line in lines:
        fields = line.split()
        if fields[0] == "local":
            rules.add(("local", fields[1], fields[2], None))
        else:
            rules.add((fields[0], fields[1], fields[2], fields[3]))
            assert fields[4] == "scram-sha-256", line
    return rules


def test_db_nodes_get_patroni_and_etcd_instead_of_a_single_postgresql(cluster):
    topology, tree = cluster
    for db in nodes_with(topology, "db"):
        rendered = tree.rendered()[db["name"]]
        assert "webstack.db.patroni" in rendered["sls"] and "webstack.db.etcd" in rendered["sls"]
        assert "webstack.db.postgresql" not in rendered["sls"]
        files = tree.rendered_files(db["name"])
        assert {PATRONI, ETCD, ETCD_DROPIN} <= set(files)
        assert SINGLE_HBA not in files
        ids = rendered["highstate_ids"]
        # etcd is up before Patroni starts; the app's role/database come after the member runs.
        order = [
            "webstack-db-etcd-service-running",
            "webstack-db-patroni-service-running",
            "webstack-db-patroni-member-webstack_patroni-member_running",
            "webstack-db-patroni-user-webstack_postgres-user_present",
            "webstack-db-patroni-database-postgres_database-present",
        ]
        assert [i for i in ids if i in order] == order


def test_one_db_node_stays_a_single_postgresql(state_tree):
    topology = make_topology(lbs=1, apps=2, dbs=1)
    tree = state_tree(topology)
    rendered = tree.rendered()["db1"]
    assert "webstack.db.postgresql" in rendered["sls"]
    assert not {"webstack.db.patroni", "webstack.db.etcd"} & set(rendered["sls"])
    files = tree.rendered_files("db1")
    assert SINGLE_HBA in files and PATRONI not in files and ETCD not in files


def test_patroni_members_dcs_and_secrets_come_from_topology_and_pillar(cluster):
    topology, tree = cluster
    dbs = nodes_with(topology, "db")
    for db in dbs:
        config = patroni_config(tree, db)
        assert config["scope"] == topology["name"]
        assert config["name"] == db["name"]
        assert config["restapi"]["listen"] == config["restapi"]["connect_address"]
        assert config["restapi"]["listen"] == f"{db['address']}:8008"
        assert config["etcd3"]["hosts"] == [f"{d['address']}:2379" for d in dbs]
        pg = config["postgresql"]
        assert pg["listen"] == f"127.0.0.1,{db['address']}:5432"
        assert pg["connect_address"] == f"{db['address']}:5432"
        assert pg["data_dir"] == "/var/lib/postgresql/15/patroni"
        auth = pg["authentication"]
        assert auth["superuser"] == {
            "username": "postgres",
            "password": SECRETS["postgres_superuser_password"],
        }
        assert auth["replication"]["password"] == SECRETS["postgres_replication_password"]
        assert auth["rewind"]["password"] == SECRETS["postgres_rewind_password"]
        assert config["restapi"]["authentication"]["password"] == SECRETS["patroni_rest_password"]
        dcs = config["bootstrap"]["dcs"]
        assert dcs["synchronous_mode"] is True
        assert dcs["synchronous_mode_strict"] is False
        assert dcs["synchronous_node_count"] == 1
        assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
        assert dcs["postgresql"]["use_pg_rewind"] is True
        assert config["watchdog"]["mode"] == "off"


def test_pg_hba_admits_exactly_the_app_nodes_and_the_db_nodes_for_replication(cluster):
    topology, tree = cluster
    apps = [a["address"] for a in nodes_with(topology, "app")]
    dbs = [d["address"] for d in nodes_with(topology, "db")]
    expected = {
        ("local", "all", "all", None),
        ("host", "all", "all", "127.0.0.1/32"),
        # Over the network only with TLS (hostssl): the app nodes' FerretDB, the db nodes' own.
        *(("hostssl", "webstack", "webstack", f"{a}/32") for a in apps),
        *(("hostssl", "replication", "replicator", f"{d}/32") for d in dbs),
        *(("hostssl", "postgres", "rewind", f"{d}/32") for d in dbs),
    }
    for db in nodes_with(topology, "db"):
        config = patroni_config(tree, db)
        assert config["postgresql"]["pg_hba"] == config["bootstrap"]["pg_hba"]
        assert hba_rules(config["postgresql"]["pg_hba"]) == expected


def test_etcd_initial_cluster_is_the_db_nodes_in_topology_order(cluster):
    topology, tree = cluster
    dbs = nodes_with(topology, "db")
    initial = ",".join(f"{d['name']}=https://{d['address']}:2380" for d in dbs)
    for db in dbs:
        text, check = tree.rendered_files(db["name"])[ETCD]
        config = yaml.safe_load(text)
        assert config["name"] == db["name"]
        assert config["initial-cluster"] == initial
        assert config["initial-cluster-state"] == "new"
        assert config["initial-cluster-token"] == f"{topology['name']}-etcd"
        assert config["listen-peer-urls"] == f"https://{db['address']}:2380"
        assert config["initial-advertise-peer-urls"] == f"https://{db['address']}:2380"
        assert (
            config["listen-client-urls"] == f"https://{db['address']}:2379,https://127.0.0.1:2379"
        )
        assert config["advertise-client-urls"] == f"https://{db['address']}:2379"
        # Peers and clients alike show a certificate of the site CA.
        for section in ("client-transport-security", "peer-transport-security"):
            assert config[section]["client-cert-auth"] is True, section
            assert config[section]["trusted-ca-file"] == tree.lookup["pki"]["ca_cert"], section
        assert config["enable-grpc-gateway"] is True  # Patroni's etcd3 client needs it
        assert config["data-dir"] == "/var/lib/etcd/webstack"
        assert "yaml" in check
        dropin, _ = tree.rendered_files(db["name"])[ETCD_DROPIN]
        assert "Environment=ETCD_CONFIG_FILE=/etc/etcd/webstack.yml" in dropin


def test_ferretdb_sidecars_list_every_db_node_read_write(cluster):
    topology, tree = cluster
    dbs = nodes_with(topology, "db")
    for app in nodes_with(topology, "app"):
        unit, _ = tree.rendered_files(app["name"])["/etc/systemd/system/ferretdb.service"]
        url = re.search(r"--postgresql-url=postgres://(\S+?)/webstack\?(\S+)", unit)
        assert url.group(1).split(",") == [f"{d['address']}:5432" for d in dbs]
        assert "target_session_attrs=read-write" in url.group(2).split("&")


def test_no_rendered_file_names_an_address_outside_the_topology(cluster):
    topology, tree = cluster
    allowed = {n["address"] for n in topology["nodes"]} | {topology["vip"]["address"], "127.0.0.1"}
    for node in topology["nodes"]:
        for path, (text, _) in tree.rendered_files(node["name"]).items():
            found = {a for a in IPV4.findall(text) if ipaddress.ip_address(a)} - allowed
            assert not found, f"{node['name']}:{path} names {found}"


def test_states_run_once_per_cluster_on_the_leader_only(state_tree):
    topology = make_topology(lbs=1, apps=1, dbs=3)
    tree = state_tree(topology)
    low = tree._run("lowstate", "db2")
    leader_only = [
        "webstack-db-patroni-dynamic_config-webstack_patroni-dynamic_config",
        "webstack-db-patroni-user-webstack_postgres-user_present",
        "webstack-db-patroni-database-postgres_database-present",
    ]
    for sid in leader_only:
        assert low[sid]["onlyif"] == [{"fun": "webstack_patroni.is_leader"}], sid
    assert low["webstack-db-patroni-dynamic_config-webstack_patroni-dynamic_config"]["config"][
        "synchronous_mode"
    ]
    user = low["webstack-db-patroni-user-webstack_postgres-user_present"]
    assert (user["name"], user["password_pillar"]) == ("webstack", "webstack:secrets:db_password")
    assert user["superuser"] is False
    database = low["webstack-db-patroni-database-postgres_database-present"]
    assert (database["name"], database["owner"]) == ("webstack", "webstack")
    # The default cluster is dropped only while it exists, and never created in the first place.
    drop = low["webstack-db-patroni-default_cluster-cmd-run"]
    assert drop["onlyif"] == "test -e /etc/postgresql/15/main/postgresql.conf"
    # One apt transaction for the role (Patroni, PostgreSQL, etcd), in its own process, after
    # the setting that keeps Debian's default cluster from being created.
    pkg = low["webstack-db-package-pkg-installed"]
    assert {"file": "webstack-db-package-createcluster-file-managed"} in pkg["require"]
    assert set(pkg["pkgs"]) >= {"patroni", "postgresql", "etcd-server", "etcd-client"}
    assert pkg["parallel"] is True
    service = low["webstack-db-patroni-service-running"]
    assert {"sls": "webstack.db.etcd"} in service["require"]
    assert {"cmd": "webstack-db-patroni-default_cluster-cmd-run"} in service["require"]
    # Its config, and this node's certificate (Patroni reloads to read a reissued one).
    assert service["watch"] == [
        {"file": "webstack-db-patroni-config-file-managed"},
        {"sls": "webstack.pki"},
    ]
    assert service["reload"] is True
    config = low["webstack-db-patroni-config-file-managed"]
    assert config["show_changes"] is False and config["mode"] == "0640"
    assert config["check_cmd"] == "/usr/local/libexec/webstack/patroni-check-config"


# --------------------------------------------------------------------------------------------------
# Config checks: Patroni's own validator (Debian's 3.0.2), etcd's YAML check
# --------------------------------------------------------------------------------------------------


def run_check(cmd, text, tmp_path, name="candidate"):
    candidate = tmp_path / name
    candidate.write_text(text)
    cmd = cmd.replace("/usr/local/libexec/webstack/patroni-check-config", str(CHECK_CONFIG))
    proc = subprocess.run(
        [*shlex.split(cmd), str(candidate)], capture_output=True, text=True, timeout=60, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def lab_like_cluster(state_tree):
    topology = make_topology(lbs=2, apps=2, dbs=3)
    return topology, state_tree(topology)


@pytest.mark.parametrize("minion", ["db1", "db2", "db3"])
def test_rendered_configs_pass_their_checks(lab_like_cluster, minion, tmp_path):
    _, tree = lab_like_cluster
    files = tree.rendered_files(minion)
    for path in (PATRONI, ETCD):
        text, cmd = files[path]
        code, out = run_check(cmd, text, tmp_path)
        assert code == 0, f"{path}: {out}"


PATRONI_BREAKAGES = [
    ("    ttl: 15\n", "    ttl: fifteen\n", "bootstrap.dcs.ttl"),
    ('      username: "rewind"\n', '      user: "rewind"\n', "postgresql.authentication.rewind"),
    ('  data_dir: "/var/lib/postgresql/15/patroni"\n', '  data_dir: ""\n', "data_dir"),
    ('  bin_dir: "/usr/lib/postgresql/15/bin"\n', '  bin_dir: "/nonexistent"\n', "bin_dir"),
]


@pytest.mark.parametrize("old, new, key", PATRONI_BREAKAGES, ids=[b[2] for b in PATRONI_BREAKAGES])
def test_patroni_check_rejects_a_broken_config(lab_like_cluster, old, new, key, tmp_path):
    _, tree = lab_like_cluster
    text, cmd = tree.rendered_files("db1")[PATRONI]
    assert old in text
    code, out = run_check(cmd, text.replace(old, new, 1), tmp_path)
    assert code != 0, out
    assert key in out


def test_patroni_check_sets_aside_only_what_depends_on_the_moment(lab_like_cluster, tmp_path):
    """Our own running Patroni/PostgreSQL (ports in use) and unreachable etcd hosts are not
    errors of the file; the same file with a bad value still fails."""
    _, tree = lab_like_cluster
    text, cmd = tree.rendered_files("db1")[PATRONI]
    config = yaml.safe_load(text)
    assert config["etcd3"]["hosts"]  # none of them answers here: set aside
    code, out = run_check(cmd, text, tmp_path)
    assert code == 0, out
    code, out = run_check(cmd, text.replace("scope: ", "scope: [", 1), tmp_path)
    assert code != 0


def test_etcd_check_rejects_a_config_without_its_member_name(lab_like_cluster, tmp_path):
    _, tree = lab_like_cluster
    text, cmd = tree.rendered_files("db1")[ETCD]
    code, out = run_check(cmd, re.sub(r"(?m)^name: .*\n", "", text), tmp_path)
    assert code != 0 and "missing name" in out
    code, out = run_check(cmd, text + "\n  - not: [yaml\n", tmp_path)
    assert code != 0


# --------------------------------------------------------------------------------------------------
# The validation gate
# --------------------------------------------------------------------------------------------------

GATE = "webstack-common-validation-webstack_topology-validated"


def only_the_gate_failed(states, expected):
    assert list(states) == [GATE], f"states other than validation ran: {list(states)}"
    assert states[GATE]["result"] is False
    assert expected in states[GATE]["comment"], states[GATE]["comment"]


def test_two_db_nodes_stop_at_the_gate_naming_nodes(state_tree):
    tree = state_tree(make_topology(lbs=1, apps=1, dbs=2))
    only_the_gate_failed(
        tree.apply("db1"), "nodes: 2 db nodes with engine ferretdb; use 1 (single PostgreSQL)"
    )


def test_a_cluster_without_its_secrets_stops_at_the_gate(state_tree):
    secrets = {k: v for k, v in SECRETS.items() if k != "postgres_replication_password"}
    tree = state_tree(make_topology(lbs=1, apps=1, dbs=3), secrets=secrets)
    only_the_gate_failed(
        tree.apply("db2"), "webstack:secrets:postgres_replication_password: missing"
    )
