"""HTTP behaviour that needs no database: health, errors as JSON, request ids and the log line."""

import logging
import re
import time

import pytest


def assert_json_error(response, status, kind):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == kind
    assert body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_healthz_answers_without_the_database(client):
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 0.2  # the dead database is not consulted
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "node": "unit1"}


def test_whoami(client):
    body = client.get("/api/whoami").get_json()
    assert body["node"] == "unit1"
    assert body["address"] == "192.0.2.10"
    assert isinstance(body["pid"], int)


def test_readyz_reports_an_unreachable_database_as_503(client):
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["node"] == "unit1"
    assert "database unreachable" in body["error"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("get", "/api/notes", {}),
        ("post", "/api/notes", {"json": {"text": "hello"}}),
        ("get", "/api/notes/0123456789abcdef01234567", {}),
        ("delete", "/api/notes/0123456789abcdef01234567", {}),
    ],
)
def test_api_answers_503_json_when_the_database_is_unreachable(client, method, path, kwargs):
    started = time.monotonic()
    response = getattr(client, method)(path, **kwargs)
    assert time.monotonic() - started < 2
    body = assert_json_error(response, 503, "database_unavailable")
    assert "database is unavailable" in body["message"]
    assert response.headers["Retry-After"] == "2"


def test_page_still_names_the_server_when_the_database_is_down(client):
    response = client.get("/")
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<span id="node-name">unit1</span>' in page
    assert '<strong id="node-address">192.0.2.10</strong>' in page
    assert "The database is unavailable" in page
    assert 'id="visits"' not in page


def test_unknown_path_is_a_json_404(client):
    body = assert_json_error(client.get("/no/such/thing"), 404, "not_found")
    assert body["message"] == "no such resource: /no/such/thing"


def test_wrong_method_is_a_json_405_with_allow(client):
    response = client.put("/api/notes")
    body = assert_json_error(response, 405, "method_not_allowed")
    assert "PUT is not allowed on /api/notes" in body["message"]
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=1_0", "limit"),
        ("limit=%2B5", "limit"),
        ("limit=%D9%A5", "limit"),  # an Arabic-Indic five, which int() would accept
        ("offset=-1", "offset"),
        ("offset=100001", "offset"),
    ],
)
def test_bad_query_parameters_are_400_naming_them(client, query, field):
    body = assert_json_error(client.get(f"/api/notes?{query}"), 400, "bad_request")
    assert body["field"] == field


def test_bad_note_id_is_400_naming_the_id(client):
    body = assert_json_error(client.get("/api/notes/not-an-id"), 400, "bad_request")
    assert body["field"] == "id"


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"data": "{", "content_type": "application/json"}, 400, "body"),
        ({"data": "[1]", "content_type": "application/json"}, 400, "body"),
        ({"json": {}}, 400, "text"),
        ({"json": {"text": ""}}, 400, "text"),
        ({"json": {"text": "   "}}, 400, "text"),
        ({"json": {"text": "x" * 501}}, 400, "text"),
        ({"json": {"text": 5}}, 400, "text"),
        ({"json": {"text": "ok", "tags": []}}, 400, "tags"),
        ({"data": '{"text": "\\ud800"}', "content_type": "application/json"}, 400, "text"),
        # Control characters: NUL (PostgreSQL cannot store it), other C0, DEL, C1.
        ({"json": {"text": "a\u0000b"}}, 400, "text"),
        ({"json": {"text": "\x1b[31mred"}}, 400, "text"),
        ({"json": {"text": "bell\x07"}}, 400, "text"),
        ({"json": {"text": "del\x7f"}}, 400, "text"),
        ({"json": {"text": "c1\x9b"}}, 400, "text"),
        ({"json": {"text": "\x0bvertical tab"}}, 400, "text"),
        ({"json": {"te\u0000xt": "hi"}}, 400, "te\u0000xt"),
        ({"json": {"$set": {"text": "hi"}}}, 400, "$set"),
        ({"data": "[" * 50000, "content_type": "application/json"}, 400, "body"),
        ({"data": "text=hi", "content_type": "application/x-www-form-urlencoded"}, 415, None),
    ],
)
def test_invalid_note_bodies_are_rejected_before_the_database(client, kwargs, status, field):
    # The database is unreachable: a 503 here would mean validation ran too late.
    response = client.post("/api/notes", **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.get_json().get("field") == field


def test_control_character_message_names_it(client):
    response = client.post("/api/notes", json={"text": "a\u0000b"})
    body = assert_json_error(response, 400, "bad_request")
    assert body["field"] == "text"
    assert "U+0000 at position 1" in body["message"]


def test_tab_and_newlines_are_kept(make_app):
    from webstack_app import validation

    app = make_app()
    with app.test_request_context():
        assert validation.note_text(" a\tb\r\nc\n ") == "a\tb\r\nc"
        assert validation.note_text("caf\u00e9 \u2028 \U0001f600") == "caf\u00e9 \u2028 \U0001f600"


def test_oversized_body_is_a_json_413(make_app):
    client = make_app(max_content_length=1024).test_client()
    response = client.post("/api/notes", data=b'{"text": "' + b"a" * 2000 + b'"}',
                           content_type="application/json")  # fmt: skip
    body = assert_json_error(response, 413, "request_entity_too_large")
    assert "1024 bytes" in body["message"]


def test_unexpected_exceptions_are_a_json_500_without_traceback(make_app, caplog):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    with caplog.at_level(logging.ERROR, logger="webstack_app"):
        response = app.test_client().get("/boom")
    body = assert_json_error(response, 500, "internal_server_error")
    assert "kaboom" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["message"] == "internal error, see the app's log"
    assert any(record.exc_info for record in caplog.records)  # the traceback is in the log


def test_request_id_from_the_proxy_is_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "3f2a9c1e0b7d4e6f"})
    assert response.headers["X-Request-ID"] == "3f2a9c1e0b7d4e6f"


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 200, "a\tb", "ü"])
def test_unusable_request_ids_are_replaced(client, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = client.get("/healthz", headers=headers)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_one_log_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="webstack_app.request"):
        client.get("/api/whoami?x=1", headers={"X-Request-ID": "req-42"})
        client.get("/no%0Aline")
    lines = [r.getMessage() for r in caplog.records if r.name == "webstack_app.request"]
    assert len(lines) == 2
    assert re.fullmatch(
        r"method=GET path=/api/whoami status=200 duration_ms=\d+\.\d request_id=req-42 "
        r"client=127\.0\.0\.1",
        lines[0],
    )
    # A newline smuggled into the path cannot forge a second log line.
    assert "path=/no%0Aline status=404" in lines[1]


@pytest.mark.parametrize(
    ("headers", "logged"),
    [
        # nginx's X-Real-IP (its $remote_addr after realip) is the client, whatever
        # X-Forwarded-For a client forged.
        ({"X-Real-IP": "198.51.100.9", "X-Forwarded-For": "203.0.113.7, 10.0.0.2"}, "198.51.100.9"),
        ({"X-Real-IP": "2001:db8::1"}, "2001:db8::1"),
        # Without nginx: the TCP peer, never the first X-Forwarded-For hop.
        ({"X-Forwarded-For": "203.0.113.7, 10.0.0.2"}, "127.0.0.1"),
        ({"X-Real-IP": ""}, "127.0.0.1"),
        ({}, "127.0.0.1"),
    ],
)
def test_log_line_names_the_client_nginx_saw(client, caplog, headers, logged):
    with caplog.at_level(logging.INFO, logger="webstack_app.request"):
        client.get("/healthz", headers=headers)
    assert caplog.records[-1].getMessage().endswith(f"client={logged}")


def test_log_line_quotes_a_hostile_client_header(client, caplog):
    with caplog.at_level(logging.INFO, logger="webstack_app.request"):
        client.get("/healthz", headers={"X-Real-IP": "1.2.3.4 status=200 x" + "y" * 100})
    message = caplog.records[-1].getMessage()
    assert message.count(" status=") == 1
    assert len(message.rpartition("client=")[2]) <= 3 * 64


def test_responses_are_not_cacheable(client):
    response = client.get("/api/whoami")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_form_post_without_the_page_token_is_refused(client):
    response = client.post("/", data={"text": "hello"})
    body = assert_json_error(response, 400, "bad_request")
    assert body["field"] == "csrf_token"
