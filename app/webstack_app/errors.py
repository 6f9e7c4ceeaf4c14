"""
Every error leaves the app as JSON: ``{"error": <kind>, "message": ..., "request_id": ...}``, plus
``"field"`` when one field is at fault. Never an HTML page, never a traceback.
"""

import logging

from flask import g, jsonify, request
from pymongo.errors import ConnectionFailure, PyMongoError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

log = logging.getLogger(__name__)

# How long a client (or haproxy's redispatch) should wait before retrying after a 503.
RETRY_AFTER_SECONDS = 2


def error_response(status, kind, message, field=None, headers=None):
    """A JSON error response."""
    body = {"error": kind, "message": message, "request_id": g.get("request_id")}
    if field is not None:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    for name, value in headers or ():
        response.headers[name] = value
    return response


def _message(exc):
    # Routing errors carry Werkzeug's generic sentences; say what was asked for instead.
    generic = exc.description == type(exc).description
    if generic and isinstance(exc, NotFound):
        return f"no such resource: {request.path}"
    if generic and isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        allowed = ", ".join(sorted(exc.valid_methods))
        return f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
    return exc.description


def _http_error(exc):
    # Keep the exception's own headers (Allow on a 405, ...) but not its HTML content type.
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    kind = exc.name.lower().replace(" ", "_")
    return error_response(exc.code, kind, _message(exc), getattr(exc, "field", None), headers)


def _database_error(exc):
    if isinstance(exc, ConnectionFailure):
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        message = "the database is unavailable, try again shortly"
    else:
        log.error("database error: %s: %s", type(exc).__name__, exc)
        message = "the database refused the operation"
    return error_response(
        503, "database_unavailable", message, headers=[("Retry-After", str(RETRY_AFTER_SECONDS))]
    )


def _unexpected_error(exc):
    log.exception("unhandled error")
    return error_response(500, "internal_server_error", "internal error, see the app's log")


def init_app(app):
    """Register the JSON error handlers."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(PyMongoError, _database_error)
    app.register_error_handler(Exception, _unexpected_error)
