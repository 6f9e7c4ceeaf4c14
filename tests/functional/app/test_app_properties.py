"""
Properties of every route, on FerretDB backed by a real PostgreSQL (see conftest.py): whatever a
client sends (method, path id, query string, headers of any size, any body and content type), the
answer is never a 5xx, every 4xx is the app's JSON error, and a rejected request stores nothing.

The examples are derandomized and bounded (``EXAMPLES`` per route), so a run is reproducible and
its time predictable; ``WEBSTACK_FUZZ_EXAMPLES`` raises the count for a longer local run.
"""

import io
import json
import logging
import os
import re
from urllib.parse import quote, urlencode

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from webstack_app.validation import NOTE_MAX_LENGTH

EXAMPLES = int(os.environ.get("WEBSTACK_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LIMIT = 4096  # a small body limit keeps oversized examples cheap; the logic is the same
ASCII = st.characters(min_codepoint=32, max_codepoint=126)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
API_PREFIXES = ("/api/", "/healthz", "/readyz")

# --- text -----------------------------------------------------------------------------------------
# Control characters (NUL above all: PostgreSQL cannot store it), lone surrogates (valid in JSON as
# "\ud800", not encodable as UTF-8) and the whitespace str.strip() removes.
CONTROLS = st.characters(codec="utf-8", categories=["Cc"])
SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
SPECIAL = st.sampled_from(["\x00", "\t", "\n", "\r", "\x0b", "\x1f", "\x7f", "\x85", "\u2028", " "])
TEXT = st.text(max_size=40) | SURROGATES
# Text the app must accept: printable characters (with tabs and newlines), some non-blank.
GOOD_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]) | st.sampled_from("\t\n\r"),
    min_size=1,
    max_size=80,
).filter(str.strip)
NOTE_TEXT = st.one_of(
    GOOD_TEXT,
    GOOD_TEXT,
    st.text(max_size=NOTE_MAX_LENGTH + 20),
    st.text(st.characters(codec="utf-8") | CONTROLS | SPECIAL, max_size=30),
    st.tuples(st.text(max_size=5), SURROGATES).map("".join),
    st.tuples(st.text(max_size=10), SPECIAL, st.text(max_size=10)).map("".join),
    st.tuples(st.text(max_size=10), CONTROLS, st.text(max_size=10)).map("".join),
)
# A form field cannot carry a lone surrogate (the client encodes it as UTF-8).
FORM_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=NOTE_MAX_LENGTH + 20),
    st.text(st.characters(codec="utf-8") | SPECIAL, max_size=30),
    st.tuples(st.text(max_size=10, alphabet=ASCII), SPECIAL, st.text(max_size=10)).map("".join),
)
DISALLOWED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def valid_text(value):
    """What the app must store for this ``text`` value, or None when it must refuse it."""
    if not isinstance(value, str) or DISALLOWED.search(value):
        return None
    text = value.strip()
    if not 1 <= len(text) <= NOTE_MAX_LENGTH:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


# --- JSON bodies ----------------------------------------------------------------------------------
# Keys a document store treats specially ($-operators, dotted paths, NUL) and the one field.
KEYS = TEXT | st.sampled_from(["text", "Text", "$set", "text.x", "te\x00xt", "_id", "$where", ""])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)


def dumps(value):
    return json.dumps(value).encode()


def note_of_size(size):
    """A syntactically valid note body of exactly ``size`` bytes (its text is too long)."""
    return b'{"text": "' + b"a" * (size - 12) + b'"}'


NOTE_BODIES = st.fixed_dictionaries({"text": NOTE_TEXT}).map(dumps)
BODIES = st.one_of(
    # Notes with special text are the likeliest to slip through validation: draw them most often.
    NOTE_BODIES,
    NOTE_BODIES,
    NOTE_BODIES,
    JSON_VALUES.map(dumps),
    st.dictionaries(KEYS, JSON_VALUES, max_size=3).map(dumps),
    st.fixed_dictionaries({"text": NOTE_TEXT}, optional={"$set": JSON_VALUES}).map(dumps),
    st.binary(max_size=200),
    st.integers(min_value=LIMIT - 8, max_value=LIMIT + 8).map(note_of_size),
    st.integers(min_value=1, max_value=3 * LIMIT).map(lambda n: b"[" * n),
    st.integers(min_value=1, max_value=3 * LIMIT).map(lambda n: b'{"a":' * n),
    st.sampled_from(
        [b"1" * 5000, b'{"text": 1e999999}', b'{"text": "\\u0000"}', b"\xef\xbb\xbf{}"]
    ),
)
CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "application/merge-patch+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-16",
            "multipart/form-data",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data; boundary=",
        ]
    ),
    st.text(ASCII, max_size=40),
)

# --- headers, queries, paths ----------------------------------------------------------------------
# Header values as an HTTP server hands them on: latin-1 text without control characters (servers
# and nginx refuse those themselves), short or several KiB long.
HEADER_TEXT = st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f")
HEADER_VALUES = st.one_of(
    st.text(HEADER_TEXT, max_size=60),
    st.tuples(st.sampled_from("a,;= 0.%\t"), st.integers(1, 20_000)).map(lambda t: t[0] * t[1]),
)
HEADER_NAMES = st.sampled_from(
    [
        "X-Forwarded-For",
        "X-Real-IP",
        "X-Request-ID",
        "Accept",
        "Accept-Encoding",
        "Content-Encoding",
        "User-Agent",
        "Cookie",
        "Origin",
        "Referer",
        "Authorization",
        "If-None-Match",
        "Range",
        "X-HTTP-Method-Override",
    ]
) | st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-_!#$%&'*+.^`|~0123456789"), min_size=1)
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4)

QUERY_KEYS = st.sampled_from(["limit", "offset", "limit", "offset", "x", "text"]) | TEXT
QUERY_VALUES = st.one_of(
    st.integers(-5, 200_000).map(str),
    st.sampled_from(["", "0", "1", "20", "100", "101", "100000", "1_0", " 5", "5 ", "\x00"]),
    st.just("\u0665"),  # an Arabic-Indic five: int() takes it
    st.text(max_size=20),
    st.integers(1, 5000).map(lambda n: "9" * n),
)


def encode_pairs(pairs):
    # Lone surrogates cannot be percent-encoded as UTF-8: send them as U+FFFD, as a client would.
    return urlencode(
        [(k.encode(errors="replace"), v.encode(errors="replace")) for k, v in pairs], doseq=False
    )


QUERIES = st.one_of(
    st.just(""),
    st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=4).map(encode_pairs),
    # Raw query strings: bad percent escapes, bare keys, separators only.
    st.text(ASCII, max_size=60).map(lambda s: quote(s, safe="=&%;+")),
    st.sampled_from(["limit=%00", "limit=%ff", "offset=%", "limit", "&&", "limit=1&limit=x"]),
)

HEX = "0123456789abcdefABCDEF"
PATH_IDS = st.one_of(
    st.text(st.sampled_from(HEX), min_size=24, max_size=24),
    st.text(st.sampled_from(HEX), max_size=30),
    st.text(max_size=40).map(lambda s: quote(s.encode(errors="replace"), safe="")),
    st.text(ASCII, min_size=1, max_size=40).map(lambda s: quote(s, safe="%")),
    st.sampled_from(["%00", "a%00b", "%2F", "%2e%2e", "%ZZ", "%ff", "%c0%80", "%u0000", "null"]),
    st.sampled_from(["0" * 24 + "%00", "%00" * 24, "f" * 24 + "/", "a" * 5000, "%00" * 2000]),
    st.integers(0, 20_000).map(lambda n: "a" * n),
)
METHODS = st.sampled_from(
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "CONNECT"]
) | st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=1, max_size=12)
UNKNOWN_PATHS = st.one_of(
    st.sampled_from(["/api", "/api/", "/api/notes/", "/healthz/", "//", "/index.html", "/api/x"]),
    st.text(max_size=40).map(lambda s: "/" + quote(s.encode(errors="replace"), safe="/")),
    st.integers(1, 20_000).map(lambda n: "/" + "x" * n),
)


# --- the app under test ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(make_app):
    return make_app(max_content_length=LIMIT)


@pytest.fixture(scope="module", autouse=True)
def _quiet_driver():
    # pymongo logs every command at DEBUG when a handler listens; thousands of examples make that
    # the slowest part of the run.
    logger = logging.getLogger("pymongo")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="module")
def notes(app):
    return app.extensions["webstack"].database.db["notes"]


@pytest.fixture(scope="module")
def stored(notes, known_ids):
    """``stored(call)``: how many notes ``call()`` added (negative: removed); the notes it added
    are deleted again, so that the collection, and counting it, stays small."""
    keep = [ObjectId(i) for i in known_ids]

    def measure(call):
        before = notes.count_documents({})
        result = call()
        delta = notes.count_documents({}) - before
        if delta > 0:
            notes.delete_many({"_id": {"$nin": keep}})
        return result, delta

    return measure


@pytest.fixture(scope="module")
def known_ids(app):
    """Ids of notes that exist when the module starts (a DELETE example may remove them)."""
    client = app.test_client()
    return [
        client.post("/api/notes", json={"text": f"seed {i}"}).get_json()["id"] for i in range(5)
    ]


def set_csrf_token(client, token):
    with client.session_transaction() as session:
        session["csrf_token"] = token


def flashes(client):
    with client.session_transaction() as session:
        return list(session.get("_flashes", []))


def check_response(response, method, path, headers):
    """What holds for every answer of every route."""
    shown = method if method in ("GET", "HEAD", "POST", "DELETE") else "other"
    event(f"{shown} -> {response.status_code}")  # see --hypothesis-show-statistics
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True))
    sent_id = headers.get("X-Request-ID")
    if sent_id is not None and REQUEST_ID.fullmatch(sent_id):
        assert response.headers["X-Request-ID"] == sent_id
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    is_api = path.startswith(API_PREFIXES)
    if 400 <= response.status_code < 500 or (is_api and method not in ("HEAD", "OPTIONS")):
        if response.status_code == 204:
            return None
        assert response.mimetype == "application/json", response.get_data(as_text=True)[:300]
        if method == "HEAD":
            return None
        answer = response.get_json()
        assert isinstance(answer, dict)
        if response.status_code >= 400:
            assert set(answer) >= {"error", "message", "request_id"}, answer
            assert answer["request_id"] == response.headers["X-Request-ID"]
        return answer
    return None


def send(client, method, url, body, content_type, headers):
    return client.open(url, method=method, data=body, content_type=content_type, headers=headers)


# --- POST /api/notes: the bodies ------------------------------------------------------------------
# What a JSON client sends, most of the time; anything else the rest.
NOTE_CONTENT_TYPES = st.one_of(*[st.just("application/json")] * 4, CONTENT_TYPES)


@FUZZ
@given(body=BODIES, content_type=NOTE_CONTENT_TYPES, query=QUERIES, headers=HEADERS)
# The case: PostgreSQL cannot store NUL, FerretDB answered with an error, the app with 503.
@example(body=b'{"text": "a\\u0000b"}', content_type="application/json", query="", headers={})
def test_post_note(app, stored, body, content_type, query, headers):
    client = app.test_client()
    url = "/api/notes" + (f"?{query}" if query else "")

    def post():
        response = send(client, "POST", url, body, content_type, headers)
        answer = check_response(response, "POST", "/api/notes", headers)
        read_back = None
        if response.status_code == 201:
            read_back = client.get(f"/api/notes/{answer['id']}").get_json()
        return response, answer, read_back

    (response, answer, read_back), added = stored(post)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    expected = None
    if isinstance(payload, dict) and set(payload) == {"text"}:
        expected = valid_text(payload["text"])
    if len(body) > LIMIT:
        assert response.status_code == 413
    elif response.status_code == 201:
        assert answer["text"] == expected
        assert read_back == answer
    elif content_type == "application/json":
        # A well-formed note with the plain JSON content type is never refused.
        assert expected is None, answer
    assert added == (1 if response.status_code == 201 else 0), (response.status_code, answer)


# --- POST /: the HTML form ------------------------------------------------------------------------
TOKEN = "tok-" + "x" * 20
FORM_TOKENS = st.sampled_from(["session", "session", "wrong", "missing", "empty", "array"])
FORM_EXTRA = st.dictionaries(st.text(ASCII, max_size=10), st.text(max_size=20), max_size=2)


def form_outcome(client, response):
    """For a 303 from the form: (flash categories, text of the newest note)."""
    if response.status_code != 303:
        return None, None
    categories = [category for category, _ in flashes(client)]
    newest = client.get("/api/notes?limit=1").get_json()["notes"]
    return categories, newest[0]["text"] if newest else None


def form_fields(token, text, extra, multipart):
    """The form a browser (or a forger) would post: extra fields, the text and a token."""
    form = {k: v.encode(errors="replace").decode() for k, v in extra.items()}
    for name in ("csrf_token", "text"):
        form.pop(name, None)
    if text is not None:
        form["text"] = text
    if token == "array":
        form["csrf_token"] = [TOKEN, "other"]  # the first value counts
    elif token != "missing":
        form["csrf_token"] = {"session": TOKEN, "wrong": "tok-" + "y" * 20, "empty": ""}[token]
    if multipart:
        form["attachment"] = (io.BytesIO(b"\x00\xff"), "a.bin")
    return form


@FUZZ
@given(
    has_session=st.booleans(),
    token=FORM_TOKENS,
    text=st.none() | FORM_TEXT,
    extra=FORM_EXTRA,
    multipart=st.booleans(),
    raw=st.none() | st.tuples(BODIES, CONTENT_TYPES),
    headers=HEADERS,
)
def test_form_post(app, stored, has_session, token, text, extra, multipart, raw, headers):
    client = app.test_client()
    if has_session:
        set_csrf_token(client, TOKEN)
    if raw is not None:
        body, content_type = raw
        # The form is whatever werkzeug makes of it: no oracle, just the rules.
        token_ok = expected = None
    else:
        form = form_fields(token, text, extra, multipart)
        token_ok = has_session and token in ("session", "array")
        expected = valid_text(text) if token_ok else None

    def post():
        if raw is not None:
            response = send(client, "POST", "/", body, content_type, headers)
        else:
            response = client.post("/", data=form, headers=headers)
        check_response(response, "POST", "/", headers)
        return response, *form_outcome(client, response)

    (response, categories, newest), added = stored(post)
    if response.status_code == 303:
        assert categories in (["info"], ["error"]), categories
        assert added == (1 if categories == ["info"] else 0)
        if raw is None:
            assert (categories == ["info"]) == (expected is not None), (text, categories)
            if expected is not None:
                assert newest == expected
    else:
        assert added == 0, response.status_code
        # Without the session's token: a 400; with it, always the redirect.
        assert raw is not None or (response.status_code == 400 and not token_ok)


# --- every route, any method, path id, query, header, body ----------------------------------------
# Each route with the methods it serves: drawn most often, any method the rest of the time.
ROUTES = {
    "/": ["GET", "HEAD", "POST"],
    "/healthz": ["GET", "HEAD"],
    "/readyz": ["GET", "HEAD"],
    "/api/whoami": ["GET", "HEAD"],
    "/api/notes": ["GET", "HEAD", "POST"],
    "/api/notes/<id>": ["GET", "HEAD", "DELETE"],
    "unknown": ["GET", "POST"],
}


@pytest.mark.parametrize("route", list(ROUTES))
@FUZZ
@given(
    data=st.data(),
    fresh=st.booleans(),
    query=QUERIES,
    headers=HEADERS,
    body=st.none() | BODIES,
    content_type=CONTENT_TYPES,
)
def test_any_request(
    app, stored, known_ids, route, data, fresh, query, headers, body, content_type
):
    client = app.test_client()
    own = st.sampled_from(ROUTES[route])
    method = data.draw(st.one_of(own, own, own, METHODS), label="method")
    if route == "/api/notes/<id>":
        # A note made for this example (so that GET and DELETE find one) or a seed note.
        ids = known_ids
        if fresh:
            ids = [client.post("/api/notes", json={"text": "fresh"}).get_json()["id"]]
        existing = st.sampled_from(ids)
        path_id = data.draw(
            st.one_of(existing, existing, existing.map(lambda i: i + "%00"), PATH_IDS),
            label="path_id",
        )
        path = f"/api/notes/{path_id}"
    elif route == "unknown":
        path = data.draw(UNKNOWN_PATHS, label="path")
    else:
        path = route
    url = path + (f"?{query}" if query else "")

    def request():
        response = send(client, method, url, body, content_type, headers)
        check_response(response, method, path, headers)
        categories = None
        if path == "/" and response.status_code == 303:
            categories = [category for category, _ in flashes(client)]
        return response, categories

    (response, categories), added = stored(request)
    if method == "POST" and path == "/api/notes":
        assert added == (1 if response.status_code == 201 else 0)
    elif categories is not None:
        assert added == (1 if categories == ["info"] else 0)
    elif method == "DELETE" and response.status_code == 204:
        assert added == -1
    else:
        assert added == 0, (method, path, response.status_code)
