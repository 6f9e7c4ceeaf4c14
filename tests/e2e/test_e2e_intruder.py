"""An intruder on the lab bridge (no role, not in the topology, no accepted Salt key) tries what a
stranger on the same network would, and is refused every time for the right reason.

On the three-db lab (topology/lab-ha-db.yaml). Each attack is checked for the specific refusal:
the TLS alert of a server that wants a client certificate, the HTTP status, PostgreSQL's FATAL
text, connection refused, Salt's key states; and for the state it tried to change staying as it
was (etcd keys, Patroni's leader and dynamic config, the VIP's holder, the master's keys). Around
every attack: the VIP stays on its holder, the newest notes read through the VIP are the same,
and `salt-run webstack.status` exits 0.

Each test collects every attempt's outcome before asserting, so that one run reports all of them.
"""

import json
import re
import threading
import time
import uuid

import pytest
import yaml
from e2e_clients import SECRETS
from e2e_intruder import (
    NO_CLIENT_CERT_ALERTS,
    VRRP_GROUP,
    Intruder,
    b64,
    etcd_delete,
    etcd_get,
    in_node,
    notes_page,
    patroni_key,
)
from e2e_lab import REPO, config, wait_until

#: Forged adverts are sent at least this long (keepalived's master-down interval is ~3 adverts).
VRRP_ATTACK_SECONDS = 6.0
RANDOM_USER = f"intruder_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def intruder(ha_lab):
    code, output = ha_lab.status()
    assert code == 0, f"webstack.status before the intruder came: {output[-3000:]}"
    it = Intruder(ha_lab).up()
    try:
        yield it
    finally:
        it.down()


class Unharmed:
    """What every attack must leave as it was: the VIP's holder and the newest notes; and the
    cluster healthy (`salt-run webstack.status` exits 0) afterwards."""

    #: Whether the last attack's check found everything as it was (then nothing is left over
    #: from it to wait out, and the next attack starts at once).
    last_check_passed = False

    def __init__(self, lab):
        self.lab = lab
        if not Unharmed.last_check_passed:
            # An earlier attack that got through must not count against this one.
            lab.wait_healthy(timeout=120)
            wait_until(
                lambda: lab.status()[0] == 0,
                90,
                interval=3,
                what="webstack.status to exit 0 before",
            )
        Unharmed.last_check_passed = False
        self.holder = lab.vip_owner()
        self.notes = notes_page(lab)

    def check(self):
        holders = self.lab.vip_holders()
        assert holders == [self.holder], f"the VIP moved: {self.holder} -> {holders}"
        assert notes_page(self.lab) == self.notes, "the newest notes changed during the attack"
        code, output = self.lab.status()
        assert code == 0, f"webstack.status after the attack: {output[-3000:]}"
        Unharmed.last_check_passed = True


@pytest.fixture
def unharmed(ha_lab, intruder):
    return Unharmed(ha_lab)


def _judge(failures):
    assert not failures, f"{len(failures)} attempt(s) not refused as they must be:\n" + "\n".join(
        f"  - {f}" for f in failures
    )


def _tls_refused(answer):
    """The server refused a client with no certificate during/just after the handshake."""
    return answer["status"] is None and answer["tls_reason"] in NO_CLIENT_CERT_ALERTS


def _leader(lab):
    """The Patroni leader per `webstack_patroni.cluster` (Salt on the first db node answering)."""
    for node in lab.dbs:
        view = lab.salt(node, "webstack_patroni.cluster", timeout=30).get(node)
        if isinstance(view, dict) and view.get("leader"):
            return view["leader"]
    raise AssertionError("no db node names a Patroni leader")


# --------------------------------------------------------------------------------------------------
# etcd: Patroni's leader lock and dynamic configuration
# --------------------------------------------------------------------------------------------------


def test_etcd_refuses_a_client_without_a_certificate(ha_lab, intruder, unharmed):
    lab = ha_lab
    reader = lab.dbs[0]
    leader_key = patroni_key(lab, "leader")
    leader_before = etcd_get(lab, reader, leader_key)
    assert leader_before, f"no Patroni leader key {leader_key} in etcd"
    forged = patroni_key(lab, f"intruder-{uuid.uuid4().hex[:8]}")
    port = lab.lab.derived["ports"]["etcd_client"]
    whole = {"key": "Lw==", "range_end": "AA=="}  # "/" to the end: every key
    put = {"key": b64(forged), "value": b64("written by the intruder")}
    failures = []
    try:
        for node in lab.dbs:
            host = lab.address(node)
            for path, body in (("/v3/kv/range", whole), ("/v3/kv/put", put)):
                answer = intruder.http("https", host, port, "POST", path, body=json.dumps(body))
                if not _tls_refused(answer):
                    failures.append(f"https {host}:{port}{path} without a certificate: {answer}")
                # Plain http to the TLS port: never an answer with data.
                answer = intruder.http("http", host, port, "POST", path, body=json.dumps(body))
                if answer["status"] == 200 or '"header"' in answer["body"]:
                    failures.append(f"http {host}:{port}{path} answered: {answer['body'][:300]}")
        written = etcd_get(lab, reader, forged)
        if written is not None:
            failures.append(f"the intruder's key {forged} is in etcd: {written}")
        leader_after = etcd_get(lab, reader, leader_key)
        same = ("value", "create_revision")
        if [(leader_after or {}).get(k) for k in same] != [leader_before[k] for k in same]:
            failures.append(f"Patroni's leader key changed: {leader_before} -> {leader_after}")
    finally:
        etcd_delete(lab, reader, forged)  # if it got through, it does not stay
    _judge(failures)
    unharmed.check()


# --------------------------------------------------------------------------------------------------
# Patroni's REST API: configuration, failover, switchover
# --------------------------------------------------------------------------------------------------


def test_patroni_rest_api_refuses_config_changes_and_failovers(ha_lab, intruder, unharmed):
    lab = ha_lab
    leader = _leader(lab)
    replica = next(n for n in lab.dbs if n != leader)
    config_key = patroni_key(lab, "config")
    config_before = etcd_get(lab, lab.dbs[0], config_key)
    port = lab.lab.derived["ports"]["patroni"]
    attempts = [
        ("PATCH", "/config", {"ttl": 5, "loop_wait": 1, "maximum_lag_on_failover": 1}),
        ("POST", "/failover", {"candidate": replica}),
        ("POST", "/switchover", {"leader": leader, "candidate": replica}),
        ("POST", "/restart", {}),
    ]
    failures = []
    for node in lab.dbs:
        host = lab.address(node)
        answer = intruder.http("https", host, port, "GET", "/cluster")
        if not _tls_refused(answer):
            failures.append(f"https GET {host}:{port}/cluster without a certificate: {answer}")
        for method, path, body in attempts:
            headers = {"Content-Type": "application/json"}
            answer = intruder.http(
                "https", host, port, method, path, body=json.dumps(body), headers=headers
            )
            if not _tls_refused(answer):
                failures.append(f"https {method} {host}:{port}{path} without a cert: {answer}")
            # Plain http: refused by the TLS port (no HTTP answer) or, at least, by the API's
            # basic auth (401); never done.
            answer = intruder.http(
                "http", host, port, method, path, body=json.dumps(body), headers=headers
            )
            if answer["status"] not in (None, 401):
                failures.append(f"http {method} {host}:{port}{path}: {answer}")
    time.sleep(2)  # a failover that got through would have started by now
    after = _leader(lab)
    if after != leader:
        failures.append(f"the Patroni leader changed: {leader} -> {after}")
    config_after = etcd_get(lab, lab.dbs[0], config_key)
    if config_after != config_before:
        failures.append(f"Patroni's dynamic config changed: {config_before} -> {config_after}")
    _judge(failures)
    unharmed.check()


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------


#: libpq's sslmode and how PostgreSQL's refusal names the connection's encryption.
SSLMODES = (("disable", "no encryption"), ("require", "SSL encryption"))


def _pg_refusal(address, user, database, replication, encryption):
    """PostgreSQL's FATAL for a host pg_hba does not admit: no row for it, or a reject row."""
    host = rf'host "{re.escape(address)}", user "{re.escape(user)}"'
    if replication:
        no_entry = rf"no pg_hba\.conf entry for replication connection from {host}"
        rejected = rf"pg_hba\.conf rejects replication connection for {host}"
    else:
        host += rf', database "{re.escape(database)}"'
        no_entry = rf"no pg_hba\.conf entry for {host}"
        rejected = rf"pg_hba\.conf rejects connection for {host}"
    return re.compile(rf"FATAL:  (?:{no_entry}|{rejected}), {encryption}")


def _patroni_users():
    """PostgreSQL's roles Patroni makes (the state tree's defaults: webstack:lookup:patroni)."""
    defaults = yaml.safe_load((REPO / "salt/webstack/parameters/defaults.yaml").read_text())
    return defaults["webstack"]["patroni"]["users"]


def test_postgresql_has_no_pg_hba_entry_for_the_intruder(ha_lab, intruder, unharmed):
    lab = ha_lab
    db = lab.lab.derived["db"]
    port = lab.lab.derived["ports"]["postgresql"]
    users = _patroni_users()
    superuser, replication = users["superuser"], users["replication"]
    logins = [
        (superuser, "postgres", False),
        (replication, "postgres", True),  # a streaming-replication connection
        (replication, "postgres", False),
        (db["user"], db["name"], False),
        (RANDOM_USER, db["name"], False),
    ]
    failures = []
    for node in lab.dbs:
        host = lab.address(node)
        for user, database, repl in logins:
            for sslmode, encryption in SSLMODES:
                code, text = intruder.psql(host, port, user, database, sslmode, repl)
                expected = _pg_refusal(intruder.address, user, database, repl, encryption)
                if code == 0 or not expected.search(text):
                    failures.append(
                        f"{user}@{host}/{database} sslmode={sslmode}"
                        f"{' replication' if repl else ''}: {text[-300:]!r}"
                    )
    _judge(failures)
    unharmed.check()


# --------------------------------------------------------------------------------------------------
# The app nodes: nginx, gunicorn, the FerretDB sidecar
# --------------------------------------------------------------------------------------------------

#: Where gunicorn would listen on TCP were it not on its unix socket (its default, and the usual).
GUNICORN_TCP_PORTS = (8000, 8080, 5000)
FERRETDB_DEBUG_PORT = 8088


def _gunicorn_tcp_listeners(app):
    """(gunicorn's pids, TCP listeners owned by one of them) inside ``app`` (ss -ltnp)."""
    pids = in_node(app, "pgrep", "-f", "gunicorn").stdout.split()
    listeners = in_node(app, "ss", "-Hltnp").stdout.splitlines()
    owned = [line for line in listeners if any(f"pid={pid}," in line for pid in pids)]
    return pids, owned


def test_app_nodes_admit_only_the_lbs(ha_lab, intruder, unharmed):
    lab = ha_lab
    ports = lab.lab.derived["ports"]
    failures = []
    for app in lab.apps:
        host = lab.address(app)
        for method, path, body in (
            ("GET", "/api/notes", None),
            ("GET", "/", None),
            ("POST", "/api/notes", json.dumps({"text": "from the intruder"})),
        ):
            headers = {"Content-Type": "application/json"} if body else {}
            answer = intruder.http(
                "http", host, ports["app"], method, path, body=body, headers=headers
            )
            try:
                error = json.loads(answer["body"]).get("error")
            except ValueError:
                error = None
            if answer["status"] != 403 or error != "forbidden":
                failures.append(f"nginx {method} {host}:{ports['app']}{path}: {answer}")
        for port in (*GUNICORN_TCP_PORTS, ports["ferretdb"], FERRETDB_DEBUG_PORT):
            result = intruder.tcp(host, port)
            if result["error"] != "ECONNREFUSED":
                failures.append(f"TCP {host}:{port}: {result} (expected connection refused)")
        pids, owned = _gunicorn_tcp_listeners(app)
        if not pids:
            failures.append(f"{app}: no gunicorn process found (pgrep -f gunicorn)")
        if owned:
            failures.append(f"{app}: gunicorn listens on TCP: {owned}")
    _judge(failures)
    unharmed.check()


# --------------------------------------------------------------------------------------------------
# haproxy's stats page and Prometheus exporter
# --------------------------------------------------------------------------------------------------


def test_lb_stats_and_metrics_need_credentials(ha_lab, intruder, unharmed):
    lab = ha_lab
    port = lab.lab.derived["ports"]["stats"]
    failures = []
    for lb in lab.lbs:
        host = lab.address(lb)
        for path in ("/stats", "/stats;csv", "/metrics"):
            answer = intruder.http("https", host, port, "GET", path)
            challenge = (answer.get("headers") or {}).get("www-authenticate", "")
            if answer["status"] != 401 or "Basic" not in challenge:
                failures.append(f"https GET {host}:{port}{path} with no credentials: {answer}")
            # Plain http to the TLS port: no answer at all, or the same 401.
            answer = intruder.http("http", host, port, "GET", path)
            if answer["status"] not in (None, 401):
                failures.append(f"http GET {host}:{port}{path}: {answer}")
            for marker in ("pxname", "haproxy_", "Statistics Report"):
                if marker in answer["body"]:
                    failures.append(f"http GET {host}:{port}{path} showed {marker!r}")
    _judge(failures)
    unharmed.check()


# --------------------------------------------------------------------------------------------------
# The VIP: forged VRRP adverts at priority 255
# --------------------------------------------------------------------------------------------------


def _keepalived_settings(lb):
    """(VRRP version, advert_int) of ``lb``'s rendered keepalived.conf."""
    text = in_node(lb, "cat", "/etc/keepalived/keepalived.conf").stdout
    version = re.search(r"^\s*vrrp_version\s+(\d)", text, re.M)
    advert = re.search(r"^\s*advert_int\s+([0-9.]+)", text, re.M)
    return int(version.group(1)) if version else 2, float(advert.group(1)) if advert else 1.0


def _keepalived_log(lb, since):
    proc = in_node(
        lb, "journalctl", "-u", "keepalived", "--since", f"@{int(since)}", "--no-pager", "-o", "cat"
    )
    return proc.stdout


def test_forged_vrrp_adverts_do_not_take_the_vip(ha_lab, intruder, unharmed):
    lab = ha_lab
    derived = lab.lab.derived
    holder = unharmed.holder
    version, advert_int = _keepalived_settings(holder)
    lbs = {lb: lab.address(lb) for lb in lab.lbs}
    started = time.time() - 1
    kwargs = {
        "source": intruder.address,
        "destinations": [VRRP_GROUP, *lbs.values()],
        "version": version,
        "vrid": int(derived["vip"]["router_id"]),
        "priority": 255,
        "addresses": [derived["vip"]["address"]],
        "advert_int": advert_int,
        "seconds": VRRP_ATTACK_SECONDS,
        "rate": max(5.0, 2.0 / advert_int),
    }
    result = {}
    sender = threading.Thread(
        target=lambda: result.update(intruder.probe("vrrp", timeout=60, **kwargs)), daemon=True
    )
    samples = []
    sender.start()
    deadline = time.monotonic() + VRRP_ATTACK_SECONDS + 3 * advert_int + 1
    while time.monotonic() < deadline:
        samples.append((round(time.time() - started, 1), tuple(lab.vip_holders())))
        time.sleep(0.25)
    sender.join(timeout=60)
    assert result.get("sent", 0) >= VRRP_ATTACK_SECONDS * kwargs["rate"] * len(lbs), result
    moved = [(t, h) for t, h in samples if h != (holder,)]
    logs = {lb: _keepalived_log(lb, started) for lb in lbs}
    dropped = f"unicast source address {intruder.address} not a unicast peer"
    failures = []
    if moved:
        failures.append(f"the VIP left {holder} during the forged adverts: {moved[:8]}")
    for lb, text in logs.items():
        if dropped not in text:
            lines = [line for line in text.splitlines() if intruder.address in line][:3]
            failures.append(f"{lb}: keepalived did not log {dropped!r}; its lines: {lines}")
        if re.search(rf"advert from {re.escape(intruder.address)} with higher priority", text):
            failures.append(f"{lb}: keepalived took the forged advert as a master's")
        # Dropped adverts still count: a master that resets its advert timer on every packet it
        # reads sends none while flooded, and its backup takes over (for a moment, a split).
        flips = [
            line
            for line in text.splitlines()
            if re.search(r"Entering (MASTER|BACKUP|FAULT) STATE", line)
            or "forcing new election" in line
        ]
        if flips:
            failures.append(f"{lb}: VRRP state changes during the forged adverts: {flips[:4]}")
    views = {lb: lab.salt(lb, "webstack.vip_owner").get(lb) for lb in lbs}
    owners = sorted(m for m, v in views.items() if isinstance(v, dict) and v.get("owner"))
    if owners != [holder]:
        failures.append(f"webstack.vip_owner: {views}")
    print(f"forged VRRPv{version} adverts: {result}; VIP samples moved: {len(moved)}")
    _judge(failures)
    unharmed.check()


# --------------------------------------------------------------------------------------------------
# Salt: a forged minion key, under a new id and under an existing minion's
# --------------------------------------------------------------------------------------------------

FORGED_DIR = "/root/forged-minion"


def _salt_keys():
    proc = in_node(config.MASTER_NAME, "salt-key", "-L", "--out=json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _forged_call(intruder, master, minion_id, function):
    """salt-call ``function`` in the intruder as ``minion_id`` with a fresh key pair."""
    base = f"{FORGED_DIR}/{minion_id}"
    conf = "\n".join(
        [
            f"master: {master}",
            f"id: {minion_id}",
            f"pki_dir: {base}/pki",
            f"cachedir: {base}/cache",
            f"log_file: {base}/minion.log",
            "auth_tries: 1",
            "auth_timeout: 10",
            "rejected_retry: False",
        ]
    )
    made = intruder.inside(
        "sh", "-c", f'mkdir -p "{base}" && cat > "{base}/minion"', stdin=conf + "\n"
    )
    assert made.returncode == 0, made.stderr
    proc = intruder.inside(
        "timeout", "90", "salt-call", "-c", base, "--out=json", function, timeout=120
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_forged_minion_keys_are_never_accepted(ha_lab, intruder, unharmed):
    lab = ha_lab
    master = lab.lab.master.address
    victim = lab.lbs[0]
    new_id = f"intruder-{uuid.uuid4().hex[:8]}"
    accepted_key = f"/etc/salt/pki/master/minions/{victim}"
    victim_key = in_node(config.MASTER_NAME, "cat", accepted_key).stdout
    before = _salt_keys()
    assert victim in before["minions"] and victim_key, before
    secrets = _secret_values()
    failures = []
    outputs = {}
    try:
        for minion_id, function, code_wanted, text_wanted in (
            (new_id, "test.ping", 2, "has the minion key been accepted?"),
            (new_id, "pillar.items", 2, "has the minion key been accepted?"),
            (victim, "pillar.items", 77, "The Salt Master has rejected this minion's public key"),
        ):
            code, text = _forged_call(intruder, master, minion_id, function)
            outputs[(minion_id, function)] = text
            if code != code_wanted or text_wanted not in text:
                failures.append(f"salt-call {function} as {minion_id}: exit {code}: {text[-600:]}")
            leaked = [key for key, value in secrets.items() if value in text]
            if leaked:
                failures.append(f"salt-call {function} as {minion_id} got secrets: {leaked}")
        keys = _salt_keys()
        if (
            new_id in keys["minions"]
            or victim_key != in_node(config.MASTER_NAME, "cat", accepted_key).stdout
        ):
            failures.append(f"the master accepted a forged key: {keys}")
        if new_id not in keys["minions_pre"]:
            failures.append(f"{new_id} is not pending on the master: {keys}")
        if victim not in keys["minions_denied"]:
            failures.append(f"{victim}'s forged key is not denied on the master: {keys}")
        log = in_node(config.MASTER_NAME, "tail", "-n", "400", "/var/log/salt/master").stdout
        if f"Authentication attempt from {victim} failed, the public keys did not match" not in log:
            failures.append(f"the master did not log the mismatched key of {victim}")
        answer = lab.salt(victim, "test.ping", timeout=30)
        if answer.get(victim) is not True:
            failures.append(f"the real {victim} no longer answers: {answer}")
    finally:
        in_node(config.MASTER_NAME, "salt-key", "-y", "-d", new_id)
        # Only the denied copy: `salt-key -d` would delete the real minion's accepted key too.
        in_node(config.MASTER_NAME, "rm", "-f", f"/etc/salt/pki/master/minions_denied/{victim}")
        intruder.inside("rm", "-rf", FORGED_DIR)
    after = _salt_keys()
    assert after == before, f"the master's keys after cleaning up: {after} (before: {before})"
    _judge(failures)
    unharmed.check()


def _secret_values():
    data = yaml.safe_load(SECRETS.read_text())["webstack"]["secrets"]
    return {k: str(v) for k, v in data.items() if v and len(str(v)) >= 8}
