"""The HTML page: which server answered, the visit counter and the latest notes."""

import logging
import os

from flask import Blueprint, flash, redirect, render_template, request, url_for
from pymongo.errors import PyMongoError

from . import csrf, validation
from .notes import to_json
from .services import services

bp = Blueprint("pages", __name__)
log = logging.getLogger(__name__)

RECENT_NOTES = 10


@bp.get("/")
def index():
    svc = services()
    status = 200
    try:
        visits = svc.visits.increment()
        notes = [to_json(note) for note in svc.notes.recent(RECENT_NOTES)]
        db_error = None
    except PyMongoError as exc:
        # Still render the page: which server answered is the point of it during a failover demo.
        log.warning("page rendered without the database: %s: %s", type(exc).__name__, exc)
        visits, notes, status = None, [], 503
        db_error = "The database is unavailable: the visit counter and the notes are not shown."
    page = render_template(
        "index.html",
        settings=svc.settings,
        pid=os.getpid(),
        visits=visits,
        notes=notes,
        db_error=db_error,
        csrf_token=csrf.token(),
        max_length=validation.NOTE_MAX_LENGTH,
    )
    return page, status


@bp.post("/")
def add_note():
    csrf.check(request.form.get(csrf.FIELD))
    try:
        text = validation.note_text(request.form.get("text"))
    except validation.FieldError as exc:
        flash(exc.description, "error")
    else:
        services().notes.add(text)
        flash("Note added.", "info")
    # Post/redirect/get: reloading the page does not post the note again.
    return redirect(url_for(".index"), code=303)
