"""Checking what a client sent: every rejection is a 4xx naming the field at fault."""

import json
import re

from bson import ObjectId
from bson.errors import InvalidId
from flask import request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

NOTE_MAX_LENGTH = 500
_DIGITS = re.compile(r"[0-9]{1,9}")
# Control characters a note may not hold: C0 except tab, LF and CR; DEL; C1 (see note_text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _clip(text, length=64):
    """Client-supplied text quoted in an error message, cut short."""
    return text if len(text) <= length else text[:length] + "..."


class FieldError(BadRequest):
    """A 400 about one field; the JSON error body names it."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def read_body(limit):
    """
    The request body, at most ``limit`` bytes, else 413.

    Werkzeug >= 2.3 enforces MAX_CONTENT_LENGTH on every body read, Werkzeug 2.2 (Debian 12) only
    while parsing forms: reading at most one byte past the limit enforces it on both, also for
    chunked bodies that carry no Content-Length.
    """
    too_large = RequestEntityTooLarge(f"the request body exceeds the limit of {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    # A read returns what has arrived so far (one chunk of a chunked body, say): loop until the
    # end of the body or until it is known to be too large.
    parts, size = [], 0
    while size <= limit:
        part = request.stream.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise too_large
    return b"".join(parts)


def json_object(body):
    """Parse a JSON request body that must be an object."""
    if not request.is_json:
        raise UnsupportedMediaType("the request body must be JSON (Content-Type: application/json)")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON and bad UTF-8; RecursionError very deep nesting.
        raise FieldError("body", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise FieldError("body", "the request body must be a JSON object")
    return payload


def note_text(value, field="text"):
    """
    A note's text: a string of 1..500 characters once surrounding whitespace is removed.

    The text must be storable and displayable as it was sent, on every engine the app runs on:

    - no control characters other than tab, line feed and carriage return (the three a textarea
      sends), anywhere in the value as sent: not the C0 controls U+0000-U+001F, not DEL U+007F,
      not the C1 controls U+0080-U+009F. PostgreSQL cannot store U+0000 in text or jsonb at all
      (FerretDB passes its error on, which was a 503); the others are invisible, break terminals
      and log readers, and are not allowed in HTML text or XML 1.0.
    - no lone surrogates (JSON can carry "\\ud800", UTF-8 cannot encode it).

    Every other Unicode character is accepted, including the unassigned and private-use ones.
    """
    if not isinstance(value, str):
        raise FieldError(field, f"'{field}' must be a string of 1 to {NOTE_MAX_LENGTH} characters")
    control = _CONTROL.search(value)
    if control:
        raise FieldError(
            field,
            f"'{field}' must not contain control characters (U+{ord(control.group()):04X} at "
            f"position {control.start()}); only tab, line feed and carriage return are allowed",
        )
    text = value.strip()
    if not 1 <= len(text) <= NOTE_MAX_LENGTH:
        raise FieldError(
            field, f"'{field}' must hold 1 to {NOTE_MAX_LENGTH} characters, got {len(text)}"
        )
    try:
        # JSON may carry lone surrogates (e.g. "\ud800") that no database can store as UTF-8.
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldError(field, f"'{field}' must be valid Unicode text") from None
    return text


def new_note(payload):
    """The text of a note to create from a JSON object with exactly one key, ``text``."""
    unknown = sorted(set(payload) - {"text"})
    if unknown:
        field = _clip(unknown[0])
        raise FieldError(field, f"unknown field '{field}' (only 'text' is accepted)")
    if "text" not in payload:
        raise FieldError("text", "'text' is required")
    return note_text(payload["text"])


def query_int(name, default, minimum, maximum):
    """An integer query parameter within [minimum, maximum]."""
    raw = request.args.get(name)
    if raw is None:
        return default
    # Plain ASCII digits only: int() would also take "1_0", " 5" or non-ASCII digits.
    value = int(raw) if _DIGITS.fullmatch(raw) else None
    if value is None or not minimum <= value <= maximum:
        raise FieldError(name, f"'{name}' must be an integer from {minimum} to {maximum}")
    return value


def note_id(raw):
    """A note id from the URL: the 24 hex digits of an ObjectId."""
    try:
        return ObjectId(raw)
    except (InvalidId, TypeError):
        raise FieldError("id", f"'{_clip(raw)}' is not a note id (24 hexadecimal digits)") from None
