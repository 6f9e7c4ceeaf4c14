"""
The Patroni cluster the state tree renders, run for real: three db "nodes" on loopback addresses
(127.0.80.x), each an etcd member and a Patroni running PostgreSQL 15, from the very files the
db role writes (/etc/etcd/webstack.yml, /etc/patroni/config.yml; see support/patroni_cluster.py
for the little that must move when three nodes share one host).

It proves what no render test can: the configs bootstrap a cluster with a synchronous standby;
``webstack_patroni`` (module and states) reads and judges it over real HTTP; a killed leader is
replaced by its synchronous standby within 30 s with every committed row; the killed
node rejoins as a replica. Each wait is bounded.
"""

import json
import os
import re
import socket
import subprocess
import time

import bson
import pymongo
import pytest
from labkit.writes import PacedWrites, WriteFailed
from support.patroni_cluster import LoopbackCluster, missing_tools, port_free
from support.salt_modules import UTILS, load
from support.state_tree import SECRETS, ferretdb_binary, make_topology

CIDR = "127.0.80.0/24"
#: The loopback cluster's TLS files (``{ca_cert, cert, key}``), set when it starts.
TLS = {}
FAILOVER_BOUND = 30.0  # the bound for a new primary after the old one is killed
ROWS = 200


topology_module = load("_modules", "webstack_topology", "webstack_topology_patroni_fn")


def patroni_module(topology, node_name):
    """``_modules/webstack_patroni.py`` as the loader would give it on ``node_name``."""
    module = load("_modules", "webstack_patroni", f"webstack_patroni_fn_{node_name}")
    module.__salt__ = {"webstack_topology.node": lambda: topology_module.node(node_name, topology)}
    # Its TLS files: the cluster's copies (Patroni's REST API requires a client certificate).
    module.__pillar__ = {"webstack": {"secrets": dict(SECRETS), "lookup": {"pki": dict(TLS)}}}
    module.__utils__ = UTILS
    return module


def patroni_states(module, test=False):
    # One module object per mode: load() imports a file once per alias, and __opts__ is per object.
    states = load("_states", "webstack_patroni", f"webstack_patroni_states_fn_test_{test}")
    states.__salt__ = {
        f"webstack_patroni.{f}": getattr(module, f)
        for f in ("cluster", "config", "config_diff", "patch_config", "wait_member_running")
    }
    states.__opts__ = {"test": test}
    return states


@pytest.fixture(scope="module")
def topology():
    return make_topology(lbs=1, apps=1, dbs=3, cidr=CIDR)


@pytest.fixture(scope="module")
def loopback(state_tree, topology):
    problem = missing_tools()
    if problem:
        # scripts/bootstrap-dev installs the packages (make test runs it): a missing one is a
        # broken environment, not a reason to skip quietly.
        pytest.fail(f"no real Patroni cluster on this host: {problem}", pytrace=False)
    derived = topology_module.derive(topology)
    members = derived["db_cluster"]["members"]
    ports = derived["ports"]
    busy = [
        f"{m['address']}:{ports[p]}"
        for m in members
        for p in ("postgresql", "patroni", "etcd_client", "etcd_peer")
        if not port_free(m["address"], ports[p])
    ]
    if busy:
        pytest.skip(f"ports in use on loopback: {', '.join(busy)}")
    tree = state_tree(topology)
    cluster_files = {
        m["name"]: {
            "patroni": tree.rendered_files(m["name"])["/etc/patroni/config.yml"][0],
            "etcd": tree.rendered_files(m["name"])["/etc/etcd/webstack.yml"][0],
        }
        for m in members
    }
    cluster = LoopbackCluster(cluster_files, members, tree.lookup["pki"])
    TLS.update(cluster.tls)
    cluster.app_files = tree.rendered_files("app1")
    try:
        cluster.start()
        cluster.wait(lambda: ready(cluster), 120, "a leader, a sync standby, three members running")
        yield cluster
    finally:
        cluster.stop()


def ready(cluster, exclude=(), count=3):
    data = cluster.cluster(exclude)
    if not data:
        return None
    members = data["members"]
    running = [m for m in members if m["state"] in ("running", "streaming")]
    leaders = [m for m in running if m["role"] == "leader"]
    syncs = [m for m in running if m["role"] == "sync_standby"]
    if not (len(running) == len(members) == count and len(leaders) == 1 and len(syncs) == 1):
        return None
    # A member killed a moment ago is still listed "running" until its key expires: each one
    # must answer for itself too.
    for member in members:
        status, own = cluster.get(member["name"], "/patroni")
        if status != 200 or own.get("state") not in ("running", "streaming"):
            return None
    return {"leader": leaders[0]["name"], "sync": syncs[0]["name"], "members": members}


def test_rendered_configs_bootstrap_a_synchronous_cluster(loopback, topology):
    state = ready(loopback)
    assert state, loopback.cluster()
    leader, sync = state["leader"], state["sync"]
    code, names, err = loopback.psql(leader, "show synchronous_standby_names")
    assert code == 0, err
    assert sync in names
    code, rows, err = loopback.psql(
        leader, "select application_name, sync_state from pg_stat_replication order by 1"
    )
    assert code == 0, err
    assert dict(line.split("|") for line in rows.splitlines())[sync] == "sync"
    # Patroni wrote exactly the rendered pg_hba (plus the loopback-only lines of the harness).
    code, hba, err = loopback.psql(
        leader, "select type, database[1], user_name[1], address from pg_hba_file_rules"
    )
    assert code == 0, err
    remote = {tuple(line.split("|")) for line in hba.splitlines() if line.startswith("host")}
    dbs = [n["address"] for n in topology["nodes"] if "db" in n["roles"]]
    apps = [n["address"] for n in topology["nodes"] if "app" in n["roles"]]
    # From the network, TLS only (hostssl): a client without it matches no row.
    assert {r for r in remote if r[3] not in ("127.0.0.1",)} == {
        *(("hostssl", "replication", "replicator", a) for a in dbs),
        *(("hostssl", "postgres", "rewind", a) for a in dbs),
        *(("hostssl", "webstack", "webstack", a) for a in apps),
    }
    # The standbys stream over TLS.
    code, rows, err = loopback.psql(
        leader,
        "select s.ssl from pg_stat_replication r join pg_stat_ssl s using (pid)",
    )
    assert code == 0, err
    assert rows.split() == ["t", "t"], rows


def test_module_reads_and_judges_the_live_cluster(loopback, topology):
    state = ready(loopback)
    for name in loopback.nodes:
        module = patroni_module(topology, name)
        view = module.cluster()
        assert view["healthy"] and not view["degraded"], view
        assert view["leader"] == state["leader"]
        assert view["sync_standbys"] == [state["sync"]]
        assert view["synchronous_mode"] is True
        assert view["source"] == name
        assert {r["name"] for r in view["replicas"]} == set(loopback.nodes) - {state["leader"]}
        assert all(isinstance(r["lag"], int) for r in view["replicas"])
        assert module.is_leader() is (name == state["leader"])
        assert module.member()["patroni"]["scope"] == topology["name"]


def test_dynamic_config_state_changes_only_what_differs(loopback, topology):
    module = patroni_module(topology, "db1")
    states = patroni_states(module)
    wanted = {"synchronous_mode": True, "ttl": 15, "postgresql": {"parameters": {}}}
    ret = states.dynamic_config("t", wanted)
    assert (ret["result"], ret["changes"]) == (True, {}), ret
    changed = {"postgresql": {"parameters": {"wal_keep_size": "300MB"}}}
    assert patroni_states(module, test=True).dynamic_config("t", changed)["result"] is None
    ret = states.dynamic_config("t", changed)
    assert ret["result"] is True and ret["changes"] == {
        "old": {"postgresql": {"parameters": {"wal_keep_size": "256MB"}}},
        "new": changed,
    }, ret
    assert module.config()["postgresql"]["parameters"]["wal_keep_size"] == "300MB"
    again = states.dynamic_config("t", changed)
    assert (again["result"], again["changes"]) == (True, {})
    back = states.dynamic_config("t", {"postgresql": {"parameters": {"wal_keep_size": "256MB"}}})
    assert back["result"] is True and back["changes"]
    assert module.config()["synchronous_mode"] is True  # untouched keys stay


def test_killed_sync_standby_is_replaced_and_writes_go_on(loopback, topology):
    state = ready(loopback)
    leader, sync = state["leader"], state["sync"]
    loopback.kill(sync)
    # A commit waits for the synchronous standby; Patroni names the other replica instead
    # within a loop (loop_wait 5 s here; wal_sender_timeout 5 s when the peer vanishes silently).
    started = time.monotonic()
    code, _, err = loopback.psql(
        leader, "set statement_timeout = '30s'; create table after_sync_loss (id int)"
    )
    assert code == 0, err
    print(f"\nsync standby {sync} killed: a commit waited {time.monotonic() - started:.1f}s")
    module = patroni_module(topology, leader)
    view, _ = loopback.wait(
        lambda: (v := module.cluster())["healthy"] and sync not in v["sync_standbys"] and v,
        60,
        "another synchronous standby",
    )
    assert view["leader"] == leader
    assert view["degraded"], view  # the killed member: still listed (until ttl) or missing
    loopback.restart_node(sync)
    loopback.wait(lambda: ready(loopback), 120, f"{sync} back")
    view = module.cluster()
    assert view["healthy"] and not view["degraded"], view["warnings"]


class Writer(PacedWrites):
    """Notes written one after another through FerretDB until stopped (at most ``limit``): the
    acknowledged ids, the failures (id, error type) with their time; labkit's PacedWrites."""

    def __init__(self, uri, limit=5000, max_seconds=150):
        self.client = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000, socketTimeoutMS=3000
        )
        self.collection = self.client.webstack.failover
        super().__init__(self._insert, max_writes=limit, max_seconds=max_seconds, failure_pause=0.1)

    def _insert(self, seq):
        doc = {"_id": bson.ObjectId(), "seq": seq}
        try:
            self.collection.insert_one(doc)
        except pymongo.errors.PyMongoError as exc:
            raise WriteFailed((doc["_id"], type(exc).__name__)) from exc
        return doc["_id"], seq

    @property
    def failed(self):
        return self.failures


@pytest.fixture
def ferretdb(loopback, tmp_path):
    """FerretDB with the app node's rendered --postgresql-url (every db node, read-write)."""
    unit, _ = loopback.app_files["/etc/systemd/system/ferretdb.service"]
    url = re.search(r"--postgresql-url=(\S+)", unit).group(1)
    app_uri = json.loads(loopback.app_files["/etc/webstack/app.json"][0])["mongo_uri"]
    # The app's role and database, as the db role's states create them on the leader.
    leader = ready(loopback)["leader"]
    password = SECRETS["db_password"].replace("'", "''")
    for sql in (
        f"create role webstack login password '{password}'",
        "create database webstack owner webstack",
    ):
        code, _, err = loopback.psql(leader, sql)
        assert code == 0, err
    port = free_port()
    command = [
        ferretdb_binary(),
        "--handler=postgresql",
        f"--postgresql-url={url}",
        f"--listen-addr=127.0.0.1:{port}",
        f"--state-dir={tmp_path}",
        "--telemetry=disable",
        "--debug-addr=-",
        "--log-level=warn",
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FERRETDB_")}
    with (tmp_path / "ferretdb.log").open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environ)
    try:
        yield app_uri.replace("127.0.0.1:27017", f"127.0.0.1:{port}"), url
    finally:
        proc.kill()
        proc.wait(timeout=10)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_killed_leader_is_replaced_by_its_sync_standby_with_every_acked_write(
    loopback, topology, ferretdb
):
    uri, url = ferretdb
    assert all(f"{a}:5432" in url for a in (m.api.split(":")[0] for m in loopback.nodes.values()))
    assert "target_session_attrs=read-write" in url
    state = ready(loopback)
    leader, sync = state["leader"], state["sync"]
    survivor = patroni_module(topology, sync)
    with Writer(uri) as writer:
        loopback.wait(lambda: len(writer.acked) >= 50, 60, "50 writes through FerretDB")
        loopback.kill(leader)
        killed = time.monotonic()
        # Until its lock expires the dead leader is still listed "running": the module asks it.
        early = survivor.cluster()
        assert not early["healthy"], early
        assert any(f"leader {leader} does not answer" in p for p in early["problems"]), early

        def new_leader():
            data = loopback.cluster(exclude=(leader,))
            for member in (data or {}).get("members", []):
                if member["role"] == "leader" and member["state"] == "running":
                    return member["name"] if member["name"] != leader else None
            return None

        promoted, _ = loopback.wait(new_leader, FAILOVER_BOUND + 30, "a new leader", 0.2)
        failover = time.monotonic() - killed
        acked_at_failover = len(writer.acked)
        loopback.wait(
            lambda: len(writer.acked) >= acked_at_failover + 50, 60, "writes through the new leader"
        )
    back = writer.recovered and f", writes back {writer.recovered - killed:.1f}s after the kill"
    print(
        f"\nfailover: {leader} killed, {promoted} leader after {failover:.1f}s; "
        f"{len(writer.acked)} writes acknowledged, {len(writer.failed)} failed{back or ''}"
    )
    assert promoted == sync, "only the synchronous standby may be promoted"
    assert failover <= FAILOVER_BOUND, f"new leader after {failover:.1f}s"
    # Every acknowledged write is there, read back through FerretDB from the new leader.
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
        stored = {d["_id"] for d in client.webstack.failover.find({}, {"_id": 1})}
    missing = set(writer.acked) - stored
    assert not missing, f"{len(missing)} acknowledged writes lost"
    assert len(stored) >= len(writer.acked)

    # Two of three: healthy again once the last replica is the sync standby, but degraded.
    view, _ = loopback.wait(
        lambda: (v := survivor.cluster())["healthy"] and v["leader"] == promoted and v,
        60,
        "a synchronous standby for the new leader",
    )
    assert view["degraded"], view

    loopback.restart_node(leader)
    back, _ = loopback.wait(lambda: ready(loopback), 120, f"{leader} back as a replica")
    assert back["leader"] == promoted
    rejoined = next(m for m in back["members"] if m["name"] == leader)
    assert rejoined["role"] in ("replica", "sync_standby")
    assert rejoined["timeline"] > 1
    view = survivor.cluster()
    assert view["healthy"] and not view["degraded"], view
