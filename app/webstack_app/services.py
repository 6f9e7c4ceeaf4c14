"""The objects a view needs, built once per app by the factory."""

from dataclasses import dataclass

from flask import current_app

from .config import Settings
from .db import Database
from .notes import NoteStore
from .visits import VisitCounter

EXTENSION_KEY = "webstack"


@dataclass(frozen=True)
class Services:
    settings: Settings
    database: Database
    notes: NoteStore
    visits: VisitCounter

    @classmethod
    def build(cls, settings):
        database = Database(settings)
        return cls(
            settings=settings,
            database=database,
            notes=NoteStore(database, settings.node_name),
            visits=VisitCounter(database, settings.node_name),
        )


def services():
    """The current app's :class:`Services`."""
    return current_app.extensions[EXTENSION_KEY]
