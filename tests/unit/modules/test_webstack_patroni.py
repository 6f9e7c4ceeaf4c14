"""
Unit tests of _modules/webstack_patroni.py. The parser runs on answers captured from a real
Patroni 3.0.2 cluster (Debian's packages, three members on loopback, the state tree's rendered
configs: see tests/functional/state_tree/test_patroni_cluster.py) at each moment that matters:
bootstrapping, healthy, a replica killed, a failover. ``cluster`` and friends run against a stdlib
HTTP server that answers like Patroni's REST API.
"""

import base64
import http.server
import inspect
import json
import pathlib
import ssl
import threading
from unittest import mock

import pytest
from salt.exceptions import CommandExecutionError
from support.salt_modules import UTILS, load
from support.site_pki import SitePki

ANSWERS = pathlib.Path(__file__).with_name("patroni_answers")
patroni = load("_modules", "webstack_patroni", "webstack_patroni_unit")
patroni.__utils__ = UTILS
EXPECTED = ["db1", "db2", "db3"]


def answer(name):
    return json.loads((ANSWERS / f"{name}.json").read_text())


CONFIG = answer("config")


def parse(name, config=CONFIG, **kwargs):
    return patroni.parse_cluster(answer(name), config, EXPECTED, **kwargs)


# --------------------------------------------------------------------------------------------------
# parse_cluster on real answers
# --------------------------------------------------------------------------------------------------


def test_a_healthy_cluster():
    view = parse("cluster-healthy")
    assert view["healthy"] and not view["degraded"], view
    assert (view["leader"], view["sync_standbys"]) == ("db3", ["db1"])
    assert view["synchronous_mode"] is True
    assert view["timeline"] == 1
    replicas = {r["name"]: r for r in view["replicas"]}
    assert set(replicas) == {"db1", "db2"}
    assert replicas["db1"]["sync"] and not replicas["db2"]["sync"]
    assert all(r["state"] == "running" and r["lag"] == 0 for r in replicas.values())
    assert view["problems"] == view["warnings"] == []


def test_bootstrapping_without_a_leader_is_unhealthy():
    view = parse("cluster-bootstrapping-no-leader")
    assert not view["healthy"]
    assert view["leader"] is None
    assert view["problems"] == ["no leader: no member holds the leader lock (writes are refused)"]
    assert "db3: initializing new cluster" in view["warnings"]


def test_replicas_being_created_leave_no_synchronous_standby():
    view = parse("cluster-replicas-being-created")
    assert view["leader"] == "db3"
    assert view["problems"] == [
        "no synchronous standby: a write acknowledged now would live on db3 only"
    ]
    assert view["warnings"] == ["db1: creating replica", "db2: creating replica"]


def test_streaming_replicas_before_one_is_made_synchronous():
    view = parse("cluster-no-sync-standby-yet")
    assert not view["healthy"] and view["sync_standbys"] == []
    # Without synchronous mode (or without its configuration) nobody needs to be synchronous.
    assert patroni.parse_cluster(answer("cluster-no-sync-standby-yet"), {}, EXPECTED)["healthy"]
    no_sync = {**CONFIG, "synchronous_mode": False}
    assert parse("cluster-no-sync-standby-yet", no_sync)["healthy"]


def test_a_killed_replica_is_listed_running_until_its_key_expires():
    """Patroni still lists the killed sync standby: only asking it directly tells."""
    assert parse("cluster-sync-replica-just-killed")["healthy"]
    gone = {"db2": "[Errno 113] No route to host"}
    view = parse("cluster-sync-replica-just-killed", unreachable=gone)
    assert not view["healthy"]
    assert view["problems"] == [
        "no synchronous standby: a write acknowledged now would live on db3 only"
    ]
    assert view["warnings"] == ["db2: does not answer ([Errno 113] No route to host)"]


def test_a_replica_gone_is_degraded_not_unhealthy():
    view = parse("cluster-replica-gone")
    assert view["healthy"] and view["degraded"]
    assert view["members"] == ["db2", "db3"]
    assert view["warnings"] == ["db1: not in the cluster (Patroni down or unreachable)"]


def test_a_replica_restarting_is_degraded():
    view = parse("cluster-replica-restarting")
    assert view["healthy"] and view["degraded"]
    assert "db1: stopped" in view["warnings"]
    assert next(r for r in view["replicas"] if r["name"] == "db1")["lag"] is None


def test_a_dead_leader_is_a_problem_at_once():
    view = parse("cluster-healthy", unreachable={"db3": "timed out"})
    assert not view["healthy"]
    assert view["problems"][0] == (
        "leader db3 does not answer (timed out): a standby takes over once its lock expires"
    )


def test_just_after_a_failover():
    promoted = parse("cluster-just-promoted")
    assert promoted["leader"] == "db2" and not promoted["healthy"]
    assert promoted["warnings"] == ["db3: not in the cluster (Patroni down or unreachable)"]
    settled = parse("cluster-after-failover")
    assert settled["healthy"] and settled["degraded"]
    assert (settled["leader"], settled["sync_standbys"]) == ("db2", ["db1"])


def test_lag_pause_and_strangers_make_it_degraded():
    data = answer("cluster-healthy")
    data["members"][1]["lag"] = 5 * 1024 * 1024
    data["pause"] = True
    data["members"].append({"name": "db9", "role": "replica", "state": "running", "lag": 0})
    view = patroni.parse_cluster(data, CONFIG, EXPECTED)
    assert view["healthy"] and view["degraded"]
    assert view["warnings"] == [
        "db2: 5.0 MB behind the leader",
        "db9: a member the topology does not name",
        "maintenance mode (paused): no automatic failover",
    ]
    assert patroni.parse_cluster(data, CONFIG, EXPECTED, max_lag=10 * 1024 * 1024)["warnings"][
        0
    ].startswith("db9")


def test_not_a_cluster_answer_is_an_error():
    with pytest.raises(CommandExecutionError, match="not a Patroni /cluster answer"):
        patroni.parse_cluster({"state": "running"})
    assert patroni.parse_cluster(json.dumps(answer("cluster-healthy")), CONFIG)["leader"] == "db3"


def test_config_diff_compares_as_patroni_stores_values():
    have = CONFIG  # captured when the defaults had ttl 20
    assert patroni.config_diff({"ttl": 20, "synchronous_mode": True}, have) == {}
    assert patroni.config_diff({"postgresql": {"parameters": {"hot_standby": "on"}}}, have) == {}
    assert patroni.config_diff({"ttl": 30, "loop_wait": 5}, have) == {"ttl": 30}
    assert patroni.config_diff(
        {"postgresql": {"parameters": {"wal_keep_size": "1GB", "max_connections": 100}}}, have
    ) == {"postgresql": {"parameters": {"wal_keep_size": "1GB"}}}
    assert patroni.config_diff({"failsafe_mode": True}, have) == {"failsafe_mode": True}


# --------------------------------------------------------------------------------------------------
# cluster / is_leader / patch_config over HTTP (a stdlib server answering like Patroni)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site CA, the members' server certificate (127.0.0.1) and this node's certificate."""
    pki = SitePki(tmp_path_factory.mktemp("pki"))
    return {"pki": pki, "server": pki.issue("db-server"), "node": pki.issue("db-node")}


def tls_lookup(site):
    node = site["node"]
    return {"pki": {"ca_cert": str(site["pki"].ca), "cert": str(node.cert), "key": str(node.key)}}


class FakePatroni:
    """One member's REST API over TLS, requiring a site-CA client certificate like Patroni with
    ``verify_client: required``: fixed answers per path, the requests it got (with the client
    certificate's common name)."""

    def __init__(self, answers, context):
        self.answers = answers
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                peer = dict(x[0] for x in self.connection.getpeercert()["subject"])
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                outer.clients.append(peer["commonName"])
                status, data = outer.answers.get((self.command, self.path), (404, None))
                payload = json.dumps(data).encode() if data is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PATCH = _answer

            def log_message(self, *args):
                pass

        self.clients = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.api = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def dead_api():
    """An address:port where nothing listens."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"127.0.0.1:{port}"


def node_view(name, apis):
    members = [
        {"name": n, "address": "127.0.0.1", "patroni_api": api} for n, api in sorted(apis.items())
    ]
    return {"valid": True, "name": name, "db_cluster": {"scope": "t", "members": members}}


@pytest.fixture
def members(site):
    context = site["pki"].server_context(site["server"])
    healthy = answer("cluster-healthy")
    leader = {("GET", "/patroni"): (200, answer("patroni-leader"))}
    replica = {("GET", "/patroni"): (200, answer("patroni-replica"))}
    common = {("GET", "/cluster"): (200, healthy), ("GET", "/config"): (200, CONFIG)}
    fakes = {
        "db1": FakePatroni(
            {**common, **replica, ("GET", "/primary"): (503, {"role": "replica"})}, context
        ),
        "db2": FakePatroni(
            {**common, **replica, ("GET", "/primary"): (503, {"role": "replica"})}, context
        ),
        "db3": FakePatroni(
            {
                **common,
                **leader,
                ("GET", "/primary"): (200, {"role": "master"}),
                ("PATCH", "/config"): (200, {**CONFIG, "ttl": 30}),
            },
            context,
        ),
    }
    yield fakes
    for fake in fakes.values():
        fake.close()


def configure(name, apis, pillar=None, lookup=None):
    """The module as minion ``name`` sees it; its TLS files from ``lookup`` (the last
    :func:`tls_lookup` by default)."""
    patroni.__salt__ = {
        "webstack_topology.node": mock.MagicMock(return_value=node_view(name, apis))
    }
    pillar = {"webstack": dict((pillar or {}).get("webstack", {}))}
    pillar["webstack"]["lookup"] = lookup if lookup is not None else configure.lookup
    patroni.__pillar__ = pillar


@pytest.fixture(autouse=True)
def _tls_files(site):
    configure.lookup = tls_lookup(site)


def test_cluster_asks_this_node_first_and_probes_the_others(members):
    configure("db2", {n: f.api for n, f in members.items()})
    view = patroni.cluster()
    assert view["source"] == "db2"
    assert view["healthy"] and not view["degraded"]
    assert [r[:2] for r in members["db2"].requests] == [("GET", "/cluster"), ("GET", "/config")]
    # Over TLS, with this node's certificate.
    assert members["db2"].clients == ["db-node", "db-node"]
    # Each other listed member is asked for itself.
    assert [r[:2] for r in members["db1"].requests] == [("GET", "/patroni")]
    assert [r[:2] for r in members["db3"].requests] == [("GET", "/patroni")]


def test_cluster_falls_back_to_another_member_and_reports_the_dead_one(members):
    apis = {n: f.api for n, f in members.items()}
    apis["db1"] = dead_api()
    configure("db1", apis)
    view = patroni.cluster()
    assert view["source"] == "db2"
    assert not view["healthy"]  # db1 was the synchronous standby
    assert view["warnings"][0].startswith("db1: does not answer (")


def test_cluster_without_any_answer(members):
    configure("db1", {n: dead_api() for n in members})
    view = patroni.cluster(timeout=0.5)
    assert not view["healthy"] and view["leader"] is None
    assert view["problems"][0].startswith("no Patroni REST API answered: ")


def test_cluster_needs_a_patroni_topology():
    patroni.__salt__ = {
        "webstack_topology.node": mock.MagicMock(return_value={"name": "db1", "db_cluster": None})
    }
    with pytest.raises(CommandExecutionError, match="no Patroni cluster"):
        patroni.cluster()


def test_is_leader_member_and_config(members):
    apis = {n: f.api for n, f in members.items()}
    for name in members:
        configure(name, apis)
        assert patroni.is_leader() is (name == "db3")
    configure("db1", {**apis, "db1": dead_api()})
    assert patroni.is_leader() is False
    configure("db3", apis)
    assert patroni.member()["role"] == "master"
    assert patroni.member("db1")["role"] == "replica"
    assert patroni.config()["synchronous_mode"] is True
    with pytest.raises(CommandExecutionError, match="no member 'db7'"):
        patroni.member("db7")


def test_patch_config_authenticates_with_the_pillar_password(members):
    apis = {n: f.api for n, f in members.items()}
    configure("db3", apis, {"webstack": {"secrets": {}}})
    with pytest.raises(CommandExecutionError, match="patroni_rest_password"):
        patroni.patch_config({"ttl": 30})
    pillar = {"webstack": {"secrets": {"patroni_rest_password": "s3cret"}}}
    configure("db3", apis, pillar)
    assert patroni.patch_config('{"ttl": 30}')["ttl"] == 30
    method, path, headers, body = members["db3"].requests[-1]
    assert (method, path, json.loads(body)) == ("PATCH", "/config", {"ttl": 30})
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"patroni:s3cret").decode()


def test_wait_member_running_gives_up_after_its_timeout(members):
    configure("db1", {n: dead_api() for n in members})
    result = patroni.wait_member_running(timeout=0, interval=0)
    assert result["running"] is False and "not running after 0s" in result["comment"]
    configure("db1", {n: f.api for n, f in members.items()})
    result = patroni.wait_member_running(timeout=5, interval=0.1)
    assert result["running"] and result["role"] == "replica" and result["leader"] == "db3"


# --------------------------------------------------------------------------------------------------
# Conventions
# --------------------------------------------------------------------------------------------------


def test_every_public_function_documents_a_cli_example():
    public = [
        f
        for n, f in inspect.getmembers(patroni, inspect.isfunction)
        if not n.startswith("_") and f.__module__ == patroni.__name__
    ]
    assert public
    for func in public:
        assert "CLI Example:" in (func.__doc__ or ""), func.__name__


def test_virtual_names_a_reason_when_unusable():
    assert patroni.__virtual__() == "webstack_patroni"
    with mock.patch.object(patroni.salt.utils.platform, "is_linux", return_value=False):
        assert patroni.__virtual__()[0] is False


def test_a_failed_config_read_is_reported_not_skipped(members):
    """Without /config the synchronous-mode check cannot run: a warning says so."""
    members["db2"].answers[("GET", "/config")] = (500, {"error": "etcd unreachable"})
    configure("db2", {n: f.api for n, f in members.items()})
    view = patroni.cluster()
    assert view["source"] == "db2" and view["synchronous_mode"] is None
    assert view["degraded"] is True
    assert view["warnings"][-1].startswith(
        "synchronous mode not checked: db2: GET /config answered"
    )
    assert "etcd unreachable" in view["warnings"][-1]


def test_a_client_certificate_of_another_ca_is_refused(members, site, tmp_path):
    apis = {n: f.api for n, f in members.items()}
    stranger = SitePki(tmp_path / "other", name="some other CA").issue("stranger")
    lookup = tls_lookup(site)
    lookup["pki"].update(cert=str(stranger.cert), key=str(stranger.key))
    configure("db3", apis, lookup=lookup)
    with pytest.raises(CommandExecutionError, match="Patroni REST API") as info:
        patroni._request(apis["db3"], "/patroni", timeout=2)
    # Refused in the handshake (an alert or the connection closed in it), before any request.
    assert isinstance(info.value.__cause__, ssl.SSLError)
    assert members["db3"].requests == []


def test_a_server_with_another_ca_is_not_believed(tmp_path, site):
    other = SitePki(tmp_path / "other", name="some other CA")
    impostor = FakePatroni(
        {("GET", "/patroni"): (200, answer("patroni-leader"))},
        other.server_context(other.issue("impostor"), require_client=False),
    )
    try:
        configure("db1", {"db1": impostor.api})
        with pytest.raises(CommandExecutionError, match="CERTIFICATE_VERIFY_FAILED"):
            patroni._request(impostor.api, "/patroni", timeout=2)
        assert impostor.requests == []
    finally:
        impostor.close()


def test_request_keeps_the_cause():
    with pytest.raises(CommandExecutionError, match=r"Patroni REST API .*/patroni: ") as info:
        patroni._request(dead_api(), "/patroni", timeout=1)
    assert isinstance(info.value.__cause__, OSError)
    assert str(info.value.__cause__) in str(info.value)


def test_postgresql_health_of_a_server_that_refuses():
    run = mock.MagicMock(
        return_value={"retcode": 2, "stdout": "", "stderr": "/run/postgresql:5432 - no response"}
    )
    patroni.__salt__ = {"cmd.run_all": run}
    with mock.patch("salt.utils.path.which", return_value="/usr/bin/pg_isready"):
        ret = patroni.postgresql_health(port=5433)
    assert ret == {
        "port": 5433,
        "accepting": False,
        "pg_isready": "/run/postgresql:5432 - no response",
        "role": None,
        "healthy": False,
    }
    assert run.call_args.args[0] == ["pg_isready", "-p", "5433"]
    with mock.patch("salt.utils.path.which", return_value=None):
        assert "postgresql-client" in patroni.postgresql_health(port=5433)["error"]
