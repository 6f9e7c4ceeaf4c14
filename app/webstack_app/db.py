"""
The one MongoDB client of a process, with timeouts short enough that a dead database fails a request
in about ``server_selection_timeout_ms`` instead of hanging it.

Only APIs present in both pymongo 3.11 (Debian 12) and pymongo 4 are used.
"""

import os
import threading

from pymongo import MongoClient
from pymongo.errors import ConfigurationError

from .config import ConfigError


class Database:
    """Owns the :class:`~pymongo.MongoClient` and hands out the app's database."""

    def __init__(self, settings):
        self._settings = settings
        self._lock = threading.Lock()
        self._client = None
        self._pid = None
        # Build the client now (it does not connect yet) so that a malformed URI stops the app at
        # start-up rather than at the first request.
        self._get_client()

    def _new_client(self):
        settings = self._settings
        try:
            return MongoClient(
                settings.mongo_uri,
                serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
                connectTimeoutMS=settings.connect_timeout_ms,
                socketTimeoutMS=settings.socket_timeout_ms,
                appname=f"webstack-app/{settings.node_name}",
                tz_aware=True,
                # No connection and no monitor thread before the first operation: gunicorn may fork
                # after the app was built, and a client must never be shared across a fork.
                connect=False,
            )
        except (ConfigurationError, ValueError) as exc:
            # pymongo's messages name the faulty part of the URI, never the password.
            raise ConfigError(f"mongo_uri is invalid: {exc}") from None

    def _get_client(self):
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    # A forked child inherits the parent's client object; pymongo forbids using it
                    # there, so the child builds its own (the parent's one is left to the parent).
                    self._client = self._new_client()
                    self._pid = pid
        return self._client

    @property
    def db(self):
        """The app's database (``db_name``)."""
        return self._get_client()[self._settings.db_name]

    def ping(self):
        """Round-trip to the server; raises a :class:`~pymongo.errors.PyMongoError` on failure.

        ``ping`` on the app's own database: FerretDB answers it by checking its PostgreSQL
        connection, so "ready" means storage is reachable. A read is no such proof: FerretDB
        answers a find on a collection it has not seen with an empty result, PostgreSQL or not.
        """
        self.db.command("ping")

    def close(self):
        """Close the client of this process (used when a test or a worker shuts down)."""
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None
            self._pid = None
