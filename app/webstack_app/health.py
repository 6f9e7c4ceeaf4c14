"""
Health endpoints.

``/healthz`` says the process answers and touches nothing else: haproxy checks it (through nginx),
and a database outage must not take every app server out of the pool at once. ``/readyz`` says
whether this server can reach the database right now.
"""

import time

from flask import Blueprint, jsonify
from pymongo.errors import PyMongoError

from .services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok", node=services().settings.node_name)


@bp.get("/readyz")
def readyz():
    svc = services()
    started = time.perf_counter()
    try:
        svc.database.ping()
    except PyMongoError as exc:
        response = jsonify(
            status="unavailable",
            node=svc.settings.node_name,
            error=f"database unreachable: {type(exc).__name__}",
        )
        response.status_code = 503
        return response
    return jsonify(
        status="ready",
        node=svc.settings.node_name,
        db_ping_ms=round((time.perf_counter() - started) * 1000, 1),
    )
