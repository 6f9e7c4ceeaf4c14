"""
The rendered haproxy and nginx configs behave as the edge must, run by the real binaries.

One sandbox per module (support/edge_sandbox.py): a mount + network + PID namespace carrying
the topology's addresses (VIP, lbs, apps, client sources). For the lb, the real haproxy with
lb1's haproxy.cfg in front of two fake app backends on app1/app2:80; for the app node, the real
nginx with app1's site in front of a fake gunicorn on its unix socket. Clients connect from
chosen source addresses. The limits are lowered through the pillar lookup so the 429s are
quick and exact; each lb test starts haproxy afresh (empty stick table, every server UP).
"""

import json
import os
import pwd
import re
import shutil

import pytest
from support.edge_sandbox import HAPROXY, NGINX, EdgeSandbox
from support.state_tree import make_topology

REQUESTS_LIMIT = 20  # per client address per period (lowered from the default)
CONNECTIONS_LIMIT = 5  # concurrent per client address (lowered from the default)
LOOKUP = {
    "lb": {
        "haproxy": {"client_limits": {"requests": REQUESTS_LIMIT, "connections": CONNECTIONS_LIMIT}}
    }
}
CLIENTS = [f"10.88.0.{i}" for i in range(100, 140)]  # ordinary clients, limited
STRANGER = "10.88.0.150"  # may not reach an app node directly
DIRECT = "10.88.0.200"  # clients.direct_app_access
UNLIMITED = "10.88.0.210"  # inside clients.unlimited
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NGINX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def missing_requirements():
    if os.geteuid() != 0:
        return "needs root (unshare of mount, network and PID namespaces)"
    for binary in (HAPROXY, NGINX, shutil.which("unshare"), shutil.which("ip")):
        if not binary or not os.access(binary, os.X_OK):
            return f"binary missing: {binary}"
    try:
        pwd.getpwnam("haproxy")
    except KeyError:
        return "no haproxy user (the haproxy package creates it)"
    ferretdb = os.environ.get(
        "WEBSTACK_FERRETDB_BIN", "/var/cache/webstack/ferretdb-v1.24.2/ferretdb"
    )
    if not os.path.exists(ferretdb):
        return f"FerretDB binary missing at {ferretdb} (the state tree renders with it)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _requirements():
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def topology():
    topology = make_topology(lbs=2, apps=2, dbs=1)
    topology["clients"] = {"direct_app_access": [DIRECT], "unlimited": ["10.88.0.208/29"]}
    return topology


@pytest.fixture(scope="module")
def nodes(topology):
    return {n["name"]: n["address"] for n in topology["nodes"]} | {
        "vip": topology["vip"]["address"]
    }


@pytest.fixture(scope="module")
def rendered(state_tree, topology):
    tree = state_tree(topology, lookup=LOOKUP)
    return {
        "haproxy": tree.rendered_files("lb1")["/etc/haproxy/haproxy.cfg"][0],
        "nginx": tree.rendered_files("app1")["/etc/nginx/sites-available/webstack"][0],
        "ca": str(tree.pki.ca),
        "pki": tree.pki,
    }


def identity(rendered, name, address):
    """``{ca, cert, key}`` of a site-CA certificate for ``name`` at ``address``."""
    issued = rendered["pki"].issue(name, addresses=(address,))
    return {"ca": rendered["ca"], "cert": str(issued.cert), "key": str(issued.key)}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, topology, nodes):
    addresses = [*nodes.values(), *CLIENTS, STRANGER, DIRECT, UNLIMITED]
    box = EdgeSandbox(tmp_path_factory.mktemp("edge"), topology["vip"]["interface"], addresses)
    yield box
    box.close()


@pytest.fixture
def lb(sandbox, rendered, nodes):
    """haproxy (lb1's config) started afresh in front of both fake app backends."""
    sandbox.call("nginx_stop")
    sandbox.call("gunicorn_stop")
    for name in ("app1", "app2"):
        # As nginx does: TLS with the app node's own certificate, haproxy's required.
        tls = identity(rendered, name, nodes[name])
        sandbox.call("backend_start", name=name, address=nodes[name], port=8443, tls=tls)
    sandbox.call("haproxy_start", config=rendered["haproxy"])
    # Clients reach the VIP over https (verified against the site CA), as users do.
    sandbox.call("tls", ca=rendered["ca"], hosts=[nodes["vip"]])
    sandbox.call("haproxy_wait", status="UP", servers=["app1", "app2"])
    sandbox.call("backend_hits", reset=True)
    yield sandbox
    sandbox.call("haproxy_stop")


@pytest.fixture
def app_node(sandbox, rendered, nodes):
    """nginx (app1's site) in front of the fake gunicorn, on app1's address and 127.0.0.1."""
    sandbox.call("haproxy_stop")
    for name in ("app1", "app2"):  # app1:80 is nginx's now
        sandbox.call("backend_stop", name=name)
    sandbox.call("gunicorn_start")
    sandbox.call("nginx_start", site=rendered["nginx"], probe=nodes["app1"])
    yield sandbox
    sandbox.call("nginx_stop")


def request(box, source, host, path="/api/whoami", **kwargs):
    return box.call("http", source=source, host=host, path=path, **kwargs)


def json_of(answer):
    assert answer["status"] is not None, answer
    assert answer["headers"].get("content-type", "").startswith("application/json"), answer
    return json.loads(answer["body"])


def hits(box, path):
    return {name: counts.get(path, 0) for name, counts in box.call("backend_hits").items()}


# --------------------------------------------------------------------------- haproxy


def test_app_503s_reach_one_backend_once_and_mark_no_server_down(lb, nodes):
    """observe layer4: an app's 503 is not a server failure; retry-on leaves 503 alone."""
    before = lb.call("haproxy_servers")
    clients = CLIENTS[:20]
    burst = [
        {"source": clients[i % len(clients)], "host": nodes["vip"], "path": "/db"}
        for i in range(200)
    ]
    answers = lb.call("burst", requests=burst)
    after = lb.call("haproxy_servers")
    bodies = [json_of(a) for a in answers]
    assert [a["status"] for a in answers] == [503] * 200
    # The app's own answer (its server named), not haproxy's "no server available".
    assert {b["error"] for b in bodies} == {"database_unavailable"}
    assert {b["server"] for b in bodies} == {"app1", "app2"}
    for name in ("app1", "app2"):
        assert after[name]["status"] == "UP", after[name]
        assert after[name]["chkdown"] == before[name]["chkdown"], (before[name], after[name])
    db_hits = hits(lb, "/db")
    assert sum(db_hits.values()) == 200, db_hits  # no 503 was retried


def test_plain_http_on_the_vip_is_redirected_to_https_and_nothing_reaches_the_app(lb, nodes):
    answer = request(lb, CLIENTS[19], nodes["vip"], path="/api/notes?limit=1", port=80)
    assert answer["status"] == 308, answer
    assert answer["headers"]["location"] == f"https://{nodes['vip']}/api/notes?limit=1"
    assert sum(hits(lb, "/api/notes").values()) == 0
    secure = request(lb, CLIENTS[19], nodes["vip"])
    assert secure["status"] == 200, secure
    # HSTS is opt-in (it pins browsers to https for max-age).
    assert "strict-transport-security" not in secure["headers"]


def test_a_refused_connection_is_retried_on_the_other_server(lb, nodes):
    lb.call("backend_stop", name="app1")
    answers = [request(lb, CLIENTS[20], nodes["vip"]) for _ in range(12)]
    assert [a["status"] for a in answers] == [200] * 12, answers
    assert {json_of(a)["server"] for a in answers} == {"app2"}
    # Each was first sent to app1 and redispatched at once (no turn-around wait).
    assert max(a["elapsed"] for a in answers) < 1, [round(a["elapsed"], 2) for a in answers]
    assert int(lb.call("haproxy_servers")["app1"]["wredis"]) >= 1


def test_no_server_left_is_haproxy_s_own_json_503_with_retry_after(lb, nodes):
    for name in ("app1", "app2"):
        lb.call("backend_stop", name=name)
    lb.call("haproxy_wait", status="DOWN", servers=["app1", "app2"])
    answer = request(lb, CLIENTS[21], nodes["vip"])
    body = json_of(answer)
    assert answer["status"] == 503, answer
    assert answer["headers"].get("retry-after") == "2", answer["headers"]
    assert set(body) == {"error", "message", "request_id"}, body
    assert body["error"] == "service_unavailable"
    assert body["request_id"], body


def test_a_client_over_its_request_rate_gets_429_and_others_do_not(lb, nodes):
    greedy, modest = CLIENTS[22], CLIENTS[23]
    burst = []
    for i in range(REQUESTS_LIMIT + 10):
        burst.append({"source": greedy, "host": nodes["vip"], "path": "/api/whoami"})
        if i % 3 == 0:
            burst.append({"source": modest, "host": nodes["vip"], "path": "/api/whoami"})
    answers = lb.call("burst", requests=burst, workers=4)
    mine = [a for r, a in zip(burst, answers, strict=True) if r["source"] == greedy]
    theirs = [a for r, a in zip(burst, answers, strict=True) if r["source"] == modest]
    assert sorted(a["status"] for a in mine) == [200] * REQUESTS_LIMIT + [429] * 10, mine
    assert {a["status"] for a in theirs} == {200}, theirs
    refused = next(a for a in mine if a["status"] == 429)
    body = json_of(refused)
    assert refused["headers"].get("retry-after") == "10", refused["headers"]
    assert set(body) == {"error", "message", "request_id"}, body
    assert body["error"] == "too_many_requests"
    # Refused at the lb: the app saw only the admitted requests.
    assert sum(hits(lb, "/api/whoami").values()) == REQUESTS_LIMIT + len(theirs)


def test_an_unlimited_client_is_never_throttled(lb, nodes):
    burst = [
        {"source": UNLIMITED, "host": nodes["vip"], "path": "/api/whoami"}
        for _ in range(3 * REQUESTS_LIMIT)
    ]
    answers = lb.call("burst", requests=burst, workers=8)
    assert {a["status"] for a in answers} == {200}, [a["status"] for a in answers]


def test_a_client_over_its_concurrent_connections_gets_429(lb, nodes):
    hoarder = CLIENTS[24]
    lb.call("hold", source=hoarder, host=nodes["vip"], port=80, count=CONNECTIONS_LIMIT)
    try:
        refused = request(lb, hoarder, nodes["vip"])
        other = request(lb, CLIENTS[25], nodes["vip"])
    finally:
        lb.call("release")
    assert refused["status"] == 429, refused
    assert json_of(refused)["error"] == "too_many_requests"
    assert other["status"] == 200, other


def test_the_client_s_x_forwarded_for_never_reaches_the_app(lb, nodes):
    client = CLIENTS[26]
    answer = request(
        lb, client, nodes["vip"], headers={"X-Forwarded-For": ["6.6.6.6, 7.7.7.7", "8.8.8.8"]}
    )
    assert answer["status"] == 200, answer
    assert json_of(answer)["x_forwarded_for"] == [client]


@pytest.mark.parametrize(
    "sent, kept",
    [
        pytest.param("edge-test.1:Ab", True, id="token"),
        pytest.param("under_score", True, id="underscore"),
        pytest.param("x" * 128, True, id="128-chars"),
        pytest.param("x" * 129, False, id="129-chars"),
        pytest.param("not valid!", False, id="space"),
        pytest.param("semi;colon", False, id="semicolon"),
        pytest.param("a" * 20 + "\u00e9", False, id="non-ascii"),
        pytest.param("<script>, fine", False, id="comma-list"),
    ],
)
def test_a_client_s_request_id_is_kept_only_when_it_looks_like_one(lb, nodes, sent, kept):
    answer = request(lb, CLIENTS[27], nodes["vip"], headers={"X-Request-ID": sent})
    seen = json_of(answer)["x_request_id"]
    assert len(seen) == 1, seen
    if kept:
        assert seen == [sent]
    else:
        assert seen[0] != sent and REQUEST_ID.match(seen[0]), seen


def test_a_second_request_id_header_does_not_pass(lb, nodes):
    headers = {"X-Request-ID": ["not valid!", "fine"]}
    seen = json_of(request(lb, CLIENTS[27], nodes["vip"], headers=headers))["x_request_id"]
    assert len(seen) == 1 and REQUEST_ID.match(seen[0]), seen


def test_no_request_id_gets_one_from_haproxy(lb, nodes):
    seen = json_of(request(lb, CLIENTS[27], nodes["vip"]))["x_request_id"]
    assert len(seen) == 1 and REQUEST_ID.match(seen[0]), seen


# --------------------------------------------------------------------------- nginx


def test_nginx_s_tls_listener_admits_only_an_lb_s_certificate(app_node, nodes, rendered):
    """Port app_tls (the lbs' way in): no certificate -> 400, a site certificate that is not an
    lb's -> 403, an lb's -> 200; all JSON, none reaching the app but the last."""
    before = app_node.call("gunicorn_hits")
    bare = {"ca": rendered["ca"]}
    answer = request(app_node, nodes["lb1"], nodes["app1"], port=8443, tls=bare)
    assert answer["status"] == 400 and json_of(answer)["error"] == "bad_request", answer
    app2 = identity(rendered, "app2", nodes["app2"])
    answer = request(app_node, nodes["app2"], nodes["app1"], port=8443, tls=app2)
    assert answer["status"] == 403 and json_of(answer)["error"] == "forbidden", answer
    assert app_node.call("gunicorn_hits") == before
    lb1 = identity(rendered, "lb1", nodes["lb1"])
    answer = request(app_node, nodes["lb1"], nodes["app1"], port=8443, tls=lb1)
    assert answer["status"] == 200, answer
    # Even an lb's certificate is refused from an address that may not connect at all.
    answer = request(app_node, STRANGER, nodes["app1"], port=8443, tls=lb1)
    assert answer["status"] == 403, answer


def test_nginx_refuses_a_source_that_is_not_allowed(app_node, nodes):
    headers = {"X-Forwarded-For": nodes["lb1"], "X-Request-ID": "forged-403"}
    before = app_node.call("gunicorn_hits")
    answer = request(app_node, STRANGER, nodes["app1"], headers=headers)
    body = json_of(answer)
    assert answer["status"] == 403, answer
    assert set(body) == {"error", "message", "request_id"}, body
    assert body["error"] == "forbidden"
    assert NGINX_REQUEST_ID.match(body["request_id"]), body
    assert body["request_id"] == answer["headers"].get("x-request-id"), answer
    assert app_node.call("gunicorn_hits") == before


@pytest.mark.parametrize("peer", ["lb1", "lb2"])
def test_nginx_takes_the_client_address_and_request_id_from_an_lb(app_node, nodes, peer):
    client = CLIENTS[30]
    answer = request(
        app_node,
        nodes[peer],
        nodes["app1"],
        headers={"X-Forwarded-For": f"1.2.3.4, {client}", "X-Request-ID": "lb-req-1"},
    )
    seen = json_of(answer)
    assert answer["status"] == 200, answer
    assert seen["x_real_ip"] == [client]
    assert seen["x_forwarded_for"] == [client]
    assert seen["x_request_id"] == ["lb-req-1"]


@pytest.mark.parametrize("source", ["direct", "self", "loopback"])
def test_nginx_believes_no_forwarding_header_from_another_allowed_source(app_node, nodes, source):
    address, target = {
        "direct": (DIRECT, nodes["app1"]),
        "self": (nodes["app1"], nodes["app1"]),
        "loopback": ("127.0.0.1", "127.0.0.1"),
    }[source]
    answer = request(
        app_node,
        address,
        target,
        headers={"X-Forwarded-For": f"1.2.3.4, {CLIENTS[31]}", "X-Request-ID": "forged-1"},
    )
    seen = json_of(answer)
    assert answer["status"] == 200, answer
    assert seen["x_real_ip"] == [address]
    assert seen["x_forwarded_for"] == [address]
    assert len(seen["x_request_id"]) == 1 and NGINX_REQUEST_ID.match(seen["x_request_id"][0])


ERRORS = {
    # case: (request kwargs, status the client sees, error kind)
    "request line too long": ({"path": "/" + "a" * 9000}, 414, "request_uri_too_large"),
    "header too long": (
        {"headers": {"X-Big": "b" * 9000}},
        400,
        "request_header_fields_too_large",
    ),
    "body too large": (
        {"method": "POST", "body": "c" * (65 * 1024)},
        413,
        "request_entity_too_large",
    ),
    "internal error location": ({"path": "/.webstack-error"}, 404, "not_found"),
    "gunicorn down": ({}, 502, "bad_gateway"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_nginx_answers_its_own_errors_as_json(app_node, nodes, case):
    kwargs, status, kind = ERRORS[case]
    if case == "gunicorn down":
        app_node.call("gunicorn_stop")
    headers = {"X-Request-ID": "lb-err-1", **kwargs.pop("headers", {})}
    answer = request(app_node, nodes["lb1"], nodes["app1"], headers=headers, **kwargs)
    body = json_of(answer)
    assert answer["status"] == status, answer
    assert set(body) == {"error", "message", "request_id"}, body
    assert body["error"] == kind, body
    assert body["message"], body
    assert body["request_id"] == answer["headers"].get("x-request-id"), answer
    if case == "request line too long":  # no header was read: nginx's own id
        assert NGINX_REQUEST_ID.match(body["request_id"]), body
    else:  # the lb's
        assert body["request_id"] == "lb-err-1", body


def test_nginx_names_a_header_that_is_too_long(app_node, nodes):
    answer = request(app_node, nodes["lb1"], nodes["app1"], headers={"X-Big": "b" * 9000})
    body = json_of(answer)
    assert answer["status"] == 400, answer
    assert body["error"] == "request_header_fields_too_large", body
    assert body["message"] == "a request header is too long", body
