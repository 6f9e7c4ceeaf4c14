"""
Looking for secret values where none may be: every form a value could leak in, and a search.

The forms: the value as is; JSON-escaped, also the way Jinja's ``tojson`` escapes ``<>&'``; YAML
single-quoted; URL-encoded (``quote`` and ``quote_plus``); base64 (standard and URL-safe
alphabets) at each of the three byte alignments, so that the value is found inside a longer
encoded text too (``Authorization: Basic base64("admin:" + password)``), by the part of the
encoding that depends on the value alone.
"""

import base64
import json
import urllib.parse

#: Shorter forms would be found by chance.
MIN_FORM = 6
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"})


def _base64_cores(raw):
    """For each alignment of ``raw`` in a longer byte string, the base64 characters that depend
    on ``raw`` alone (character i covers bits 6i..6i+5)."""
    cores = set()
    for shift in range(3):
        start = (8 * shift + 5) // 6
        end = (8 * (shift + len(raw))) // 6
        padded = b"\0" * shift + raw
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            cores.add(encode(padded).decode()[start:end])
    return cores


def forms(value):
    """Every form of the secret ``value`` (a str) looked for, at least MIN_FORM long."""
    raw = value.encode()
    escaped = json.dumps(value)[1:-1]
    found = {
        value,
        escaped,
        escaped.translate(_HTML_SAFE),
        value.replace("'", "''"),
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        *_base64_cores(raw),
    }
    return {form for form in found if len(form) >= MIN_FORM}


def find(data, secrets):
    """``{key: sorted forms found}`` of each secret (``{key: value}``) found in ``data`` (str or
    bytes); empty when none is."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    hits = {}
    for key, value in secrets.items():
        if not isinstance(value, str) or not value:
            continue
        seen = sorted(form for form in forms(value) if form in data)
        if seen:
            hits[key] = seen
    return hits
