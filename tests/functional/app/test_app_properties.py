"""
Property: whatever a client sends to ``POST /api/notes`` (any JSON or none, any content type,
request id or size), the answer is never a 5xx and always JSON; valid notes are stored as sent.
"""

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LIMIT = 4096  # a small body limit keeps oversized examples cheap; the logic is the same
ASCII = st.characters(min_codepoint=32, max_codepoint=126)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# Lone surrogates are valid in JSON ("\ud800") but cannot be stored as UTF-8.
SURROGATES = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
TEXT = st.text(max_size=40) | SURROGATES
NOTE_TEXT = st.text(max_size=520) | st.tuples(st.text(max_size=5), SURROGATES).map("".join)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


def dumps(value):
    return json.dumps(value).encode()


def note_of_size(size):
    """A syntactically valid note body of exactly ``size`` bytes (its text is too long)."""
    return b'{"text": "' + b"a" * (size - 12) + b'"}'


BODIES = st.one_of(
    JSON_VALUES.map(dumps),
    st.fixed_dictionaries({"text": NOTE_TEXT}).map(dumps),
    st.dictionaries(st.sampled_from(["text", "Text", "tags"]), JSON_VALUES, max_size=3).map(dumps),
    st.binary(max_size=200),
    st.integers(min_value=LIMIT - 8, max_value=LIMIT + 8).map(note_of_size),
    st.integers(min_value=1, max_value=3 * LIMIT).map(lambda n: b"[" * n),
)
CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/merge-patch+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
        ]
    ),
    st.text(ASCII, max_size=40),
)
EXTRA_HEADERS = st.dictionaries(
    st.sampled_from(["X-Forwarded-For", "X-Real-IP", "Accept", "Content-Encoding", "User-Agent"]),
    st.text(ASCII, max_size=60),
    max_size=3,
)


@pytest.fixture(scope="module")
def client(make_app):
    return make_app(max_content_length=LIMIT).test_client()


def valid_note_text(body):
    """The text the app must store for this body, or None when it must be refused."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(payload, dict) and set(payload) == {"text"}):
        return None
    text = payload["text"]
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= 500:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text.strip()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=BODIES,
    content_type=CONTENT_TYPES,
    request_id=st.none() | st.text(ASCII, max_size=140),
    extra=EXTRA_HEADERS,
)
def test_post_note_never_fails_and_always_answers_json(
    client, body, content_type, request_id, extra
):
    headers = dict(extra)
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    response = client.post("/api/notes", data=body, content_type=content_type, headers=headers)

    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    answer = response.get_json()
    assert isinstance(answer, dict)

    sent_id = headers.get("X-Request-ID")
    if sent_id is not None and REQUEST_ID.fullmatch(sent_id):
        assert response.headers["X-Request-ID"] == sent_id
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])

    expected_text = valid_note_text(body)
    if len(body) > LIMIT:
        assert response.status_code == 413
    elif response.status_code == 201:
        assert answer["text"] == expected_text
        assert client.get(f"/api/notes/{answer['id']}").get_json() == answer
    else:
        assert set(answer) >= {"error", "message", "request_id"}
        if content_type == "application/json":
            # A well-formed note with the plain JSON content type is never refused.
            assert expected_text is None, answer
