"""No secret crosses the lab bridge in clear: full-packet captures (tcpdump on the host's side of
the bridge, which sees every frame between the containers) during a converge, a rolling deploy
and failovers, searched for every value of the site's secrets file.

Each value is searched as it is, URL-encoded and base64-encoded (at each of the three alignments,
so that it is found inside ``user:password`` of an HTTP basic auth header too). A capture must be
non-trivial for its verdict to mean anything: it must hold the traffic of the ports the activity
uses (Salt, PostgreSQL, etcd, Patroni's API, HTTP) and a canary sent in clear during it, which
the search must find. On the three-db lab (topology/lab-ha-db.yaml).
"""

import base64
import json
import signal
import socket
import struct
import subprocess
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict

import yaml
from e2e_clients import SECRETS, Stats
from e2e_lab import config, http_post_json, lxc, wait_until

#: Shorter values (none in a generated secrets file) would match by chance.
MIN_SECRET_LENGTH = 8
#: A capture is bounded: tcpdump stops by itself after this long whatever happens to the test.
MAX_CAPTURE_SECONDS = 900


# --------------------------------------------------------------------------------------------------
# The capture and the search
# --------------------------------------------------------------------------------------------------


class Capture:
    """``tcpdump -i <lab bridge>``, full packets, into ``path`` while the block runs."""

    def __init__(self, bridge, path):
        self.bridge, self.path = bridge, path
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            [
                "timeout",
                str(MAX_CAPTURE_SECONDS),
                "tcpdump",
                "-i",
                self.bridge,
                "-n",
                "-s",
                "0",  # whole packets
                "-U",  # each packet written as it comes
                "-Z",
                "root",  # the file lives in pytest's root-only tmp dir
                "-w",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stderr.readline()  # "tcpdump: listening on <bridge>, ..."
        assert "listening on" in line, f"tcpdump did not start: {line}"
        return self

    def __exit__(self, *exc):
        time.sleep(1)  # the last packets of the activity
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.summary = self.proc.stderr.read()


def packets(path):
    """``(src, sport, dst, dport, proto, payload bytes of the frame)`` per packet of a pcap file
    (Ethernet, IPv4; other frames keep their bytes with empty addresses)."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    offset = 24
    while offset + 16 <= len(data):
        _, _, length, _ = struct.unpack(endian + "IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        yield _decode(frame)


def _decode(frame):
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return ("", 0, "", 0, "other", frame)
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    proto = ip[9]
    src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
    body = ip[ihl:]
    if proto in (6, 17) and len(body) >= 8:
        sport, dport = struct.unpack("!HH", body[:4])
        header = ((body[12] >> 4) * 4) if proto == 6 and len(body) >= 13 else 8
        return (src, sport, dst, dport, "tcp" if proto == 6 else "udp", body[header:])
    return (src, 0, dst, 0, str(proto), body)


def b64_forms(value):
    """Substrings every base64 encoding of a text containing ``value`` contains, at each of the
    three alignments the value can start at (its encoding inside ``user:password`` included)."""
    raw = value.encode()
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start = (shift * 4 + 2) // 3  # characters that also encode the padding bytes
        end = len(encoded) - (4 if (shift + len(raw)) % 3 else 0)  # the last, partial group
        inner = encoded[start:end]
        if len(inner) >= MIN_SECRET_LENGTH:
            forms.append(inner.encode())
    return forms


def forms(value):
    """``{label: bytes}``: the value as it is, URL-encoded (both ways) and base64-encoded."""
    found = {"raw": value.encode()}
    for label, encoded in (
        ("urlencoded", urllib.parse.quote(value, safe="")),
        ("urlencoded+", urllib.parse.quote_plus(value)),
    ):
        if encoded != value:
            found[label] = encoded.encode()
    for n, form in enumerate(b64_forms(value)):
        found[f"base64/{n}"] = form
    return found


def secrets():
    """``{key: value}`` of the site's secrets file (long enough to search for)."""
    data = yaml.safe_load(SECRETS.read_text())["webstack"]["secrets"]
    return {k: str(v) for k, v in data.items() if v and len(str(v)) >= MIN_SECRET_LENGTH}


def search(path, needles):
    """Where each needle shows up: in the raw bytes of the file (the verdict) and, per packet,
    the flows that carried it (the report). ``{name: {"raw": bool, "flows": Counter}}``."""
    blob = path.read_bytes()
    found = {name: {"raw": False, "flows": Counter()} for name in needles}
    for name, (_, needle) in needles.items():
        found[name]["raw"] = needle in blob
    if any(f["raw"] for f in found.values()):
        for src, sport, dst, dport, proto, payload in packets(path):
            for name, (_, needle) in needles.items():
                if found[name]["raw"] and needle in payload:
                    found[name]["flows"][f"{proto} {src}:{sport} -> {dst}:{dport}"] += 1
    return found


def traffic(path):
    """``{(proto, port): bytes}`` of the capture, counted on each packet's lower port."""
    seen = defaultdict(int)
    count = 0
    for _, sport, _, dport, proto, payload in packets(path):
        count += 1
        if sport or dport:
            seen[(proto, min(p for p in (sport, dport) if p))] += len(payload)
    return count, seen


def verdict(path, activity, wanted_ports, canary):
    """Assert the capture is non-trivial (packets, the ports' traffic, the canary found) and that
    no form of any secret is in it; print where each secret found travelled."""
    count, seen = traffic(path)
    needles = {
        f"{key} ({label})": (key, form)
        for key, value in secrets().items()
        for label, form in forms(value).items()
    }
    needles["canary"] = ("canary", canary.encode())
    found = search(path, needles)
    print(f"\n{activity}: {count} packets, {path.stat().st_size} bytes in {path}")
    missing = [p for p in wanted_ports if not any(port == p for (_, port) in seen)]
    assert count > 100 and not missing, (
        f"{activity}: the capture is too thin to judge ({count} packets; no traffic on "
        f"{missing}; ports seen: {sorted({port for _, port in seen})})"
    )
    assert found.pop("canary")["raw"], f"{activity}: the canary sent in clear is not in it"
    leaks = {}
    for name, where in found.items():
        if where["raw"]:
            flows = ", ".join(f"{f} x{n}" for f, n in where["flows"].most_common(4))
            leaks[name] = flows or "(split across packets)"
            print(f"  LEAK {name}: {leaks[name]}")
    assert not leaks, f"{activity}: secrets in clear on the lab bridge:\n" + "\n".join(
        f"  - {name}: {flows}" for name, flows in leaks.items()
    )


def _canary(lab):
    """A random token sent in clear across the bridge (a UDP datagram from the host to the discard
    port of an app node, whatever TLS does to the rest): the search must find it."""
    token = f"canary-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(token.encode(), (lab.address(lab.apps[0]), 9))
    return token


def _master(*command, timeout=900):
    return subprocess.run(
        lxc.attach_args(config.MASTER_NAME, *command),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --------------------------------------------------------------------------------------------------
# The activities
# --------------------------------------------------------------------------------------------------


def test_a_converge_sends_no_secret_in_clear(ha_lab, tmp_path):
    lab = ha_lab
    path = tmp_path / "converge.pcap"
    with Capture(lab.lab.bridge, path):
        canary = _canary(lab)
        summary = lab.apply()
        # What an operator or a scraper does next: the lbs' stats with their credentials.
        Stats(lab).snapshot()
    failed = {m: e["errors"] for m, e in summary.items() if e["errors"]}
    assert not failed, f"state.apply failed: {failed}"
    ports = lab.lab.derived["ports"]
    verdict(path, "converge", [4505, 4506, ports["stats"], ports["postgresql"]], canary)


def test_a_rolling_deploy_sends_no_secret_in_clear(ha_lab, tmp_path):
    lab = ha_lab
    path = tmp_path / "deploy.pcap"
    with Capture(lab.lab.bridge, path):
        canary = _canary(lab)
        note = http_post_json(lab.vip_url + "api/notes", {"text": f"deploy {canary}"})
        proc = _master("salt-run", "--out=json", "state.orchestrate", "orch.deploy")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert note[0] == 201, note
    ports = lab.lab.derived["ports"]
    verdict(path, "rolling deploy", [4506, ports["app_tls"], ports["postgresql"]], canary)


def _patroni_view(lab):
    for node in lab.dbs:
        view = lab.salt(node, "webstack_patroni.cluster", timeout=30).get(node)
        if isinstance(view, dict) and view.get("leader"):
            return view
    return {}


def test_failovers_send_no_secret_in_clear(ha_lab, tmp_path):
    """The VIP moved (keepalived stopped on its holder), the Patroni primary hard-killed and
    rejoining (pg_rewind/replication with their roles' passwords), and a change of Patroni's
    dynamic configuration through its REST API (webstack_patroni.patch_config, basic auth)."""
    lab = ha_lab
    path = tmp_path / "failover.pcap"
    holder = lab.vip_owner()
    primary = _patroni_view(lab)["leader"]
    with Capture(lab.lab.bridge, path):
        canary = _canary(lab)
        try:
            lab.run("service", holder, "keepalived", "stop")
            wait_until(lambda: holder not in lab.vip_holders(), 15, what="the VIP to move")
        finally:
            lab.run("service", holder, "keepalived", "start")
        try:
            lab.run("kill", primary)
            wait_until(
                lambda: _patroni_view(lab).get("leader") not in (None, primary),
                90,
                interval=1,
                what="a new Patroni leader",
            )
        finally:
            lab.run("start", primary)
        wait_until(
            lambda: (v := _patroni_view(lab)).get("healthy") and not v.get("degraded"),
            240,
            interval=2,
            what=f"{primary} back in the Patroni cluster",
        )
        view = _patroni_view(lab)
        # Asked on a replica, of the leader's API: across the bridge (its own is on loopback).
        asker = next(n for n in lab.dbs if n != view["leader"])
        answer = lab.salt(
            asker,
            "webstack_patroni.patch_config",
            json.dumps({"synchronous_mode": view["synchronous_mode"]}),
            f"name={view['leader']}",
            timeout=60,
        )
        lab.wait_healthy(timeout=120)
    assert isinstance(answer.get(asker), dict), f"patch_config: {answer}"
    ports = lab.lab.derived["ports"]
    wanted = [ports["postgresql"], ports["etcd_client"], ports["patroni"], ports["app_tls"]]
    verdict(path, "failovers", wanted, canary)


def test_the_search_finds_a_secret_sent_in_clear(tmp_path):
    """The search itself: a basic auth header and a URL-encoded form field in a pcap are found."""
    secret = "s3cr/t+p@ss=word"
    frames = [
        _frame(
            b"GET / HTTP/1.1\r\nAuthorization: Basic " + base64.b64encode(b"u:" + secret.encode())
        ),
        _frame(b"POST / HTTP/1.1\r\n\r\npassword=" + urllib.parse.quote(secret, safe="").encode()),
    ]
    path = tmp_path / "t.pcap"
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    path.write_bytes(
        header + b"".join(struct.pack("<IIII", 0, 0, len(f), len(f)) + f for f in frames)
    )
    needles = {label: ("s", form) for label, form in forms(secret).items()}
    found = search(path, needles)
    assert found["urlencoded"]["raw"] and any(found[f"base64/{n}"]["raw"] for n in range(3))
    assert sum(found["urlencoded"]["flows"].values()) == 1
    assert not found["raw"]["raw"]


def test_a_secret_is_found_in_base64_wherever_it_starts():
    secret = "0123456789abcdefXYZ"
    for prefix in ("", "u:", "ab:", "user:", "admin:"):
        for suffix in ("", "!", "!!"):
            encoded = base64.b64encode(f"{prefix}{secret}{suffix}".encode())
            assert any(form in encoded for form in b64_forms(secret)), (prefix, suffix)


def _frame(payload):
    """An Ethernet/IPv4/TCP frame from 10.0.0.1:40000 to 10.0.0.2:80 (checksums left zero)."""
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 0, 0, 5 << 4, 0x18, 1024, 0, 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp),
        0,
        0,
        64,
        6,
        0,
        bytes([10, 0, 0, 1]),
        bytes([10, 0, 0, 2]),
    )
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp
