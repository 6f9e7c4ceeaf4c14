"""
A per-session token that the note form must send back.

Without it, any site a visitor opens could post notes through the visitor's browser. The token
lives in the signed session cookie, so it is valid on every app server that shares the
``secret_key``, whichever one haproxy picks for the POST.
"""

import hmac
import secrets

from flask import session

from .validation import FieldError

FIELD = "csrf_token"


def token():
    """This session's token, made on first use."""
    if FIELD not in session:
        session[FIELD] = secrets.token_urlsafe(32)
    return session[FIELD]


def check(sent):
    """Raise a 400 unless ``sent`` is this session's token."""
    expected = session.get(FIELD)
    if not (isinstance(sent, str) and expected and hmac.compare_digest(sent, expected)):
        raise FieldError(
            FIELD, "the form has expired or was not sent by this site, reload the page"
        )
