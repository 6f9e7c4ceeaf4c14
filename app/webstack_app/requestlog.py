"""
One log line per request, tagged with a request id shared with the proxies.

nginx passes its ``$request_id`` in ``X-Request-ID``; the app reuses it (so one id follows a request
through haproxy, nginx and the app) or makes one, and returns it in the response.
"""

import logging
import re
import time
import uuid
from urllib.parse import quote

from flask import g, request

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy-made id looks like; anything else (too long, spaces, control characters) is replaced
# rather than copied into the logs and the response.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Characters left as they are when quoting client-controlled values for the log line.
_LOG_SAFE = "/:@!$&'()*+,;=-._~"

log = logging.getLogger("webstack_app.request")


def _request_id():
    candidate = request.headers.get(REQUEST_ID_HEADER, "")
    return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else uuid.uuid4().hex


def _client():
    # X-Real-IP is nginx's $remote_addr after its realip processing: the real client, which nginx
    # takes from X-Forwarded-For only when the request came from a trusted load balancer. nginx
    # sets it on every request, and it is the only peer gunicorn's unix socket accepts, so the
    # header cannot come from a client. X-Forwarded-For can: a client may send any first hop, so
    # it is never logged as the client. Without nginx (a test, a direct run), the TCP peer.
    return request.headers.get("X-Real-IP", "").strip() or request.remote_addr or "-"


def _start():
    g.started = time.perf_counter()
    g.request_id = _request_id()


def _finish(response):
    duration_ms = (time.perf_counter() - g.started) * 1000
    response.headers[REQUEST_ID_HEADER] = g.request_id
    log.log(
        logging.WARNING if response.status_code >= 500 else logging.INFO,
        "method=%s path=%s status=%d duration_ms=%.1f request_id=%s client=%s",
        request.method,
        quote(request.path, safe=_LOG_SAFE),
        response.status_code,
        duration_ms,
        g.request_id,
        quote(_client()[:64], safe=_LOG_SAFE),
    )
    return response


def init_app(app):
    """Register the hooks; call first so that every other hook already sees the request id."""
    app.before_request(_start)
    app.after_request(_finish)
