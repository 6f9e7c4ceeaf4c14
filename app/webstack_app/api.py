"""The JSON API under ``/api``."""

import os

from flask import Blueprint, jsonify, url_for
from werkzeug.exceptions import NotFound

from . import validation
from .notes import to_json
from .services import services

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Deep offsets make the database skip that many documents; past this, ask for a narrower query.
MAX_OFFSET = 100_000


@bp.get("/whoami")
def whoami():
    settings = services().settings
    return jsonify(node=settings.node_name, address=settings.node_address, pid=os.getpid())


@bp.get("/notes")
def list_notes():
    limit = validation.query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = validation.query_int("offset", 0, 0, MAX_OFFSET)
    # One extra note tells whether there is a next page without counting the collection.
    notes = services().notes.recent(limit + 1, offset)
    has_more = len(notes) > limit
    return jsonify(
        notes=[to_json(note) for note in notes[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if has_more else None,
    )


@bp.post("/notes")
def create_note():
    svc = services()
    body = validation.read_body(svc.settings.max_content_length)
    text = validation.new_note(validation.json_object(body))
    note = to_json(svc.notes.add(text))
    response = jsonify(note)
    response.status_code = 201
    response.headers["Location"] = url_for(".get_note", note_id=note["id"])
    return response


def _not_found(note_id):
    return NotFound(f"no note with id {note_id}")


@bp.get("/notes/<note_id>")
def get_note(note_id):
    note = services().notes.get(validation.note_id(note_id))
    if note is None:
        raise _not_found(note_id)
    return jsonify(to_json(note))


@bp.delete("/notes/<note_id>")
def delete_note(note_id):
    if not services().notes.delete(validation.note_id(note_id)):
        raise _not_found(note_id)
    return "", 204
