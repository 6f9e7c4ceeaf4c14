"""
The Patroni cluster the state tree renders, run for real: three db "nodes" on loopback addresses
(127.0.80.x), each an etcd member and a Patroni running PostgreSQL 15, from the very files the
db role writes (/etc/etcd/webstack.yml, /etc/patroni/config.yml; see support/patroni_cluster.py
for the little that must move when three nodes share one host).

It proves what no render test can: the configs bootstrap a cluster with a synchronous standby;
``webstack_patroni`` (module and states) reads and judges it over real HTTP; a killed leader is
replaced by its synchronous standby within the issue's 30 s with every committed row; the killed
node rejoins as a replica. Each wait is bounded.
"""

import importlib.util
import time

import pytest
from support.patroni_cluster import LoopbackCluster, missing_tools, port_free
from support.state_tree import REPO, SECRETS, make_topology

CIDR = "127.0.80.0/24"
FAILOVER_BOUND = 30.0  # the bound for a new primary after the old one is killed
ROWS = 200


def load(kind, name, alias):
    spec = importlib.util.spec_from_file_location(alias, REPO / kind / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


topology_module = load("_modules", "webstack_topology", "webstack_topology_patroni_fn")


def patroni_module(topology, node_name):
    """``_modules/webstack_patroni.py`` as the loader would give it on ``node_name``."""
    module = load("_modules", "webstack_patroni", f"webstack_patroni_fn_{node_name}")
    module.__salt__ = {"webstack_topology.node": lambda: topology_module.node(node_name, topology)}
    module.__pillar__ = {"webstack": {"secrets": dict(SECRETS)}}
    return module


def patroni_states(module, test=False):
    states = load("_states", "webstack_patroni", "webstack_patroni_states_fn")
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
        pytest.skip(f"no real Patroni cluster on this host: {problem}")
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
    files = {
        m["name"]: {
            "patroni": tree.rendered_files(m["name"])["/etc/patroni/config.yml"][0],
            "etcd": tree.rendered_files(m["name"])["/etc/etcd/webstack.yml"][0],
        }
        for m in members
    }
    cluster = LoopbackCluster(files, members)
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
    if len(running) == len(members) == count and len(leaders) == 1 and len(syncs) == 1:
        return {"leader": leaders[0]["name"], "sync": syncs[0]["name"], "members": members}
    return None


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
    assert {r for r in remote if r[3] not in ("127.0.0.1",)} == {
        *(("host", "replication", "replicator", a) for a in dbs),
        *(("host", "postgres", "rewind", a) for a in dbs),
        *(("host", "webstack", "webstack", a) for a in apps),
    }


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
    wanted = {"synchronous_mode": True, "ttl": 20, "postgresql": {"parameters": {}}}
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


def test_killed_leader_is_replaced_by_its_sync_standby_with_every_committed_row(
    loopback, topology
):
    state = ready(loopback)
    leader, sync = state["leader"], state["sync"]
    code, _, err = loopback.psql(leader, "create table acked (id int primary key)")
    assert code == 0, err
    # ROWS transactions, each committed (acknowledged) only once the sync standby flushed it.
    script = "\n".join(f"insert into acked values ({i});" for i in range(ROWS))
    code, _, err = loopback.psql(leader, script)
    assert code == 0, err

    loopback.kill(leader)
    killed = time.monotonic()
    survivor = patroni_module(topology, sync)
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

    promoted, _ = loopback.wait(new_leader, FAILOVER_BOUND + 30, "a new leader", interval=0.2)
    seconds = time.monotonic() - killed
    print(f"\nfailover: {leader} killed, {promoted} leader after {seconds:.1f}s")
    assert promoted == sync, "only the synchronous standby may be promoted"
    assert seconds <= FAILOVER_BOUND, f"new leader after {seconds:.1f}s"
    code, out, err = loopback.psql(promoted, "select count(*), min(id), max(id) from acked")
    assert code == 0, err
    assert out == f"{ROWS}|0|{ROWS - 1}", "a committed row was lost"

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
    code, out, err = loopback.psql(leader, "select count(*) from acked")
    assert (code, out) == (0, str(ROWS)), err
