"""The intruder's side of the attack tests: a container on the lab bridge with no role.

`lab intruder up` (labkit.intruder) makes it: a clone of the node template at the network's highest
host address, in no topology, with no Salt minion the master accepts. The attacks run

- host tools in its network namespace (``nsenter -t <its init pid> -n``): psql, tcpdump, and this
  file itself run as a script by the host's Python (:func:`main`: TCP connects, HTTP(S) requests,
  TLS handshakes, forged VRRP adverts on a raw socket), so that every packet leaves from the
  intruder's address and nothing is installed in it;
- Salt's own tools from the template inside it (``lxc-attach``): salt-call with a forged id.

Traffic goes only to the lab bridge's addresses; every loop is bounded in time and count.
"""

import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: IP protocol number of VRRP and the multicast group its adverts go to (RFC 5798).
VRRP_PROTO = 112
VRRP_GROUP = "224.0.0.18"
#: The TLS alerts a server sends a client that has no certificate: TLS 1.3's certificate_required,
#: TLS 1.2's handshake_failure / bad_certificate (as OpenSSL names them in SSLError.reason).
NO_CLIENT_CERT_ALERTS = (
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "SSLV3_ALERT_BAD_CERTIFICATE",
)


# --------------------------------------------------------------------------------------------------
# The probes (run in the intruder's network namespace: standard library only)
# --------------------------------------------------------------------------------------------------


def probe_tcp(host, port, timeout=3):
    """``{"connected": bool, "error": "ECONNREFUSED" | "timeout" | ...}``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return {"connected": True, "error": None}
    except TimeoutError:
        return {"connected": False, "error": "timeout"}
    except OSError as exc:
        import errno

        return {"connected": False, "error": errno.errorcode.get(exc.errno, str(exc))}


def _tls_context():
    """A client with no certificate of its own that does not check the server's (curl -k): what
    is tested is whether the server lets a stranger in, not who the server is."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # TLS 1.2: a server that requires a client certificate refuses inside the handshake, with
    # an alert. In TLS 1.3 the refusal comes after the client has finished, and whether the
    # client reads the alert or just the closed connection is a race.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def probe_http(scheme, host, port, method="GET", path="/", body=None, headers=None, timeout=5):
    """One request (https: TLS without a client certificate, server unchecked).

    ``{"status": int | None, "body": str, "error": str | None, "tls_reason": str | None}``:
    ``tls_reason`` is OpenSSL's reason for a TLS failure (an alert the server sent, or
    WRONG_VERSION_NUMBER when the port does not speak TLS at all). TLS 1.3 delivers a
    certificate_required alert after the client's side of the handshake is done, on the first
    read: the request is sent and its answer read before judging.
    """
    import http.client

    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    data = body.encode() if isinstance(body, str) else body
    try:
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        return {
            "status": response.status,
            "headers": {k.lower(): v for k, v in response.getheaders()},
            "body": text[:4000],
            "error": None,
            "tls_reason": None,
        }
    except ssl.SSLError as exc:
        return {"status": None, "body": "", "error": str(exc), "tls_reason": exc.reason}
    except (OSError, http.client.HTTPException) as exc:
        return {
            "status": None,
            "body": "",
            "error": f"{type(exc).__name__}: {exc}",
            "tls_reason": None,
        }
    finally:
        conn.close()


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def vrrp_advert(version, vrid, priority, addresses, advert_int, source=None, destination=None):
    """A VRRP advertisement (RFC 3768 v2 with no authentication, RFC 5798 v3), checksummed.

    v2's checksum covers the VRRP message; v3's also an IPv4 pseudo-header (``source`` and
    ``destination`` needed). ``advert_int``: seconds (v2: whole seconds; v3: centiseconds sent).
    """
    packed = b"".join(socket.inet_aton(a) for a in addresses)
    if version == 2:
        head = struct.pack("!BBBBBBH", 0x21, vrid, priority, len(addresses), 0, int(advert_int), 0)
        message = head + packed + b"\0" * 8
        checksum = _checksum(message)
    elif version == 3:
        centiseconds = round(advert_int * 100) & 0x0FFF
        head = struct.pack("!BBBBHH", 0x31, vrid, priority, len(addresses), centiseconds, 0)
        message = head + packed
        pseudo = socket.inet_aton(source) + socket.inet_aton(destination)
        pseudo += struct.pack("!BBH", 0, VRRP_PROTO, len(message))
        checksum = _checksum(pseudo + message)
    else:
        raise ValueError(f"VRRP version {version!r}: expected 2 or 3")
    return message[:6] + struct.pack("!H", checksum) + message[8:]


def send_vrrp(source, destinations, version, vrid, priority, addresses, advert_int, seconds, rate):
    """Adverts from ``source`` to each destination (the multicast group or a unicast address),
    ``rate`` a second each for ``seconds``, IP TTL 255 as the RFCs require. ``{"sent": n}``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, VRRP_PROTO)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.bind((source, 0))
    packets = {
        dst: vrrp_advert(version, vrid, priority, addresses, advert_int, source, dst)
        for dst in destinations
    }
    sent, started = 0, time.monotonic()
    for n in range(int(seconds * rate)):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for dst, packet in packets.items():
            sock.sendto(packet, (dst, 0))
            sent += 1
    sock.close()
    return {"sent": sent, "seconds": round(time.monotonic() - started, 2)}


PROBES = {"tcp": probe_tcp, "http": probe_http, "vrrp": send_vrrp}


def main(argv):
    """``python e2e_intruder.py PROBE JSON-KWARGS``: the probe's result as JSON on stdout."""
    kind, kwargs = argv[1], json.loads(argv[2])
    print(json.dumps(PROBES[kind](**kwargs)))
    return 0


# --------------------------------------------------------------------------------------------------
# The test side (on the host)
# --------------------------------------------------------------------------------------------------


class Intruder:
    """The intruder container of the running lab, as the tests drive it."""

    def __init__(self, lab):
        from labkit import intruder

        self.lab = lab
        self._kit = intruder
        self.name = intruder.NAME
        self.address = intruder.address(lab.lab)

    def up(self):
        self.lab.run("intruder", "up", timeout=180)
        # Test clients on the host (e2e_clients.SourceAddresses) must never take this address.
        import e2e_clients

        e2e_clients._USED.add(self.address)
        return self

    def down(self):
        self.lab.run("intruder", "down", timeout=120, check=False)

    # --- from its network namespace: host tools ---------------------------------------------
    def host_tool(self, *command, timeout=60, env=None):
        """A host command in the intruder's network namespace; the CompletedProcess."""
        return subprocess.run(
            self._kit.netns_args(*map(str, command)),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )

    def probe(self, kind, timeout=60, **kwargs):
        """One of :data:`PROBES` run from the intruder's address (this file, the host's Python)."""
        proc = self.host_tool(sys.executable, __file__, kind, json.dumps(kwargs), timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"probe {kind} {kwargs} failed: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout)

    def http(self, scheme, host, port, method="GET", path="/", **kwargs):
        return self.probe(
            "http", scheme=scheme, host=host, port=port, method=method, path=path, **kwargs
        )

    def tcp(self, host, port):
        return self.probe("tcp", host=host, port=port)

    def psql(self, host, port, user, dbname, sslmode, replication=False):
        """A libpq connection attempt (the host's psql, no password): psql's error text."""
        conninfo = (
            f"host={host} port={port} user={user} dbname={dbname} sslmode={sslmode}"
            f" connect_timeout=5{' replication=true' if replication else ''}"
        )
        proc = self.host_tool(
            PSQL,
            "-w",
            "-X",
            "-A",
            "-t",
            "-c",
            "select 1",
            conninfo,
            timeout=30,
            env={**os.environ, "PGPASSWORD": "", "PGSSLMODE": sslmode},
        )
        return proc.returncode, (proc.stdout + proc.stderr).strip()

    # --- inside it: the template's tools ------------------------------------------------------
    def inside(self, *command, timeout=120, stdin=None):
        from labkit import lxc

        return subprocess.run(
            lxc.attach_args(self.name, *map(str, command)),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=stdin,
        )


#: The host's psql (postgresql-client-15, in scripts/host-packages.txt).
PSQL = "/usr/lib/postgresql/15/bin/psql"


def in_node(node, *command, timeout=120, stdin=None):
    """A command inside a lab node (lxc-attach); the CompletedProcess."""
    from labkit import lxc

    return subprocess.run(
        lxc.attach_args(node, *map(str, command)),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=stdin,
    )


def notes_page(lab):
    """The newest notes (ids and texts) read through the VIP: what an attack must not change."""
    from e2e_lab import http_get

    status, body = http_get(lab.vip_url + "api/notes?limit=100", timeout=10)
    assert status == 200, f"GET /api/notes through the VIP: {status} {body[:300]}"
    page = json.loads(body)
    return [(n["id"], n["text"]) for n in page["notes"]], page["next_offset"]


# --------------------------------------------------------------------------------------------------
# etcd, as a db node's root sees it (its real client certificate once etcd requires one)
# --------------------------------------------------------------------------------------------------

#: The node's own certificate and the site CA (state webstack.pki); absent before TLS.
PKI = "/etc/webstack/pki"
#: Patroni's etcd keys live under /service/<scope>/ (its default namespace).
PATRONI_NAMESPACE = "/service/"


def b64(text):
    import base64

    return base64.b64encode(text.encode()).decode()


def _unb64(text):
    import base64

    return base64.b64decode(text).decode("utf-8", "replace")


def etcd_member(lab, node):
    members = lab.lab.derived["db_cluster"]["members"]
    return next(m for m in members if m["name"] == node)


def etcd_call(lab, node, endpoint, payload):
    """``POST <etcd client url>/v3/<endpoint>`` from inside ``node`` with its client certificate
    when it has one (the site CA checks etcd's): the parsed JSON answer."""
    url = etcd_member(lab, node)["etcd_client_url"].rstrip("/") + f"/v3/{endpoint}"
    script = (
        'set -e; tls=""; if [ -e "$1/node.crt" ]; then '
        'tls="--cacert $1/ca.crt --cert $1/node.crt --key $1/node.key"; fi; '
        'exec curl -sS --max-time 5 $tls -X POST "$2" --data-binary @-'
    )
    proc = in_node(node, "sh", "-c", script, "sh", PKI, url, stdin=json.dumps(payload), timeout=30)
    assert proc.returncode == 0, f"etcd {endpoint} on {node}: {proc.stderr[-1000:]}"
    return json.loads(proc.stdout)


def etcd_get(lab, node, key):
    """``{"value", "create_revision", "mod_revision"}`` of ``key``, or None when it is absent."""
    answer = etcd_call(lab, node, "kv/range", {"key": b64(key)})
    kvs = answer.get("kvs") or []
    if not kvs:
        return None
    kv = kvs[0]
    return {
        "value": _unb64(kv.get("value", "")),
        "create_revision": kv.get("create_revision"),
        "mod_revision": kv.get("mod_revision"),
    }


def etcd_delete(lab, node, key):
    return etcd_call(lab, node, "kv/deleterange", {"key": b64(key)})


def patroni_key(lab, name):
    """An etcd key of the Patroni cluster: ``leader``, ``config``, ``members/db1``..."""
    return f"{PATRONI_NAMESPACE}{lab.lab.derived['db_cluster']['scope']}/{name}"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
