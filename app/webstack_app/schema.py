"""
``python -m webstack_app.schema [--wait SECONDS]``: create the app's collections before it serves.

Why it exists: FerretDB v1 reads the collection list from PostgreSQL once per process and then
trusts its in-memory copy. A collection created through one app node's FerretDB sidecar stays
invisible to a sidecar that had already loaded the list: reads there find nothing, and its insert
tries to create the table again and fails. So the app never creates a collection while serving;
the app role runs this once per node at deploy time instead. When this node's sidecar has a stale
list (creating fails, yet the collection is still not listed), it exits with STALE and the app
role restarts the sidecar and runs it again (see salt/webstack/app/files/app-schema).

The last line of output is Salt's ``stateful`` format (``changed=yes|no comment="..."``).
"""

import os
import sys
import time

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from .config import ConfigError, load_settings
from .notes import COLLECTION as NOTES
from .visits import COLLECTION as VISIT_SHARDS

COLLECTIONS = (NOTES, VISIT_SHARDS)
#: Exit status: this server's view of the collections is stale (restart the sidecar, retry).
STALE = 3
#: A sidecar restarted a moment ago may need a few seconds before it accepts connections.
CONNECT_SECONDS = 20
_NAMESPACE_EXISTS = 48
#: Seconds to wait for the database on a first deploy (the db node converges at the same time).
DEFAULT_WAIT = 300


def ensure(db, names=COLLECTIONS):
    """Create each missing collection of ``names`` in ``db``; return the ones created.

    Raises :class:`StaleView` when a collection can be neither created nor listed.
    """
    created = []
    for name in names:
        if name in db.list_collection_names():
            continue
        try:
            db.command("create", name)
        except OperationFailure as exc:
            if exc.code != _NAMESPACE_EXISTS and name not in db.list_collection_names():
                raise StaleView(f"cannot create {name!r} and it is not listed: {exc}") from exc
            continue
        created.append(name)
    return created


class StaleView(Exception):
    """The server refuses to create a collection it does not list (a stale FerretDB cache)."""


def _stateful(changed, comment):
    return f'changed={"yes" if changed else "no"} comment="{comment}"'


def _ensure_when_reachable(db, wait):
    """:func:`ensure`, retried while the database cannot be used yet (at most ``wait`` seconds).

    On a first deploy every node converges at once: the app nodes can get here before the db node
    has PostgreSQL (or the app's role) ready. A stale view is not retried: waiting cannot fix it.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            return ensure(db)
        except StaleView:
            raise
        except PyMongoError as exc:
            if time.monotonic() >= deadline:
                raise
            print(f"waiting for the database: {type(exc).__name__}", file=sys.stderr, flush=True)
            time.sleep(2)


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    wait = int(args[args.index("--wait") + 1]) if "--wait" in args else DEFAULT_WAIT
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration: {exc}", file=sys.stderr)
        return 2
    client = MongoClient(
        settings.mongo_uri,
        serverSelectionTimeoutMS=CONNECT_SECONDS * 1000,
        connectTimeoutMS=settings.connect_timeout_ms,
        socketTimeoutMS=settings.socket_timeout_ms,
        appname=f"webstack-schema/{settings.node_name}",
    )
    started = time.monotonic()
    try:
        created = _ensure_when_reachable(client[settings.db_name], wait)
    except StaleView as exc:
        print(_stateful(False, f"stale view: {exc}"))
        return STALE
    except PyMongoError as exc:
        print(f"database not usable after {wait}s: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    seconds = time.monotonic() - started
    if created:
        names = ", ".join(created)
        print(_stateful(True, f"created {names} in {settings.db_name} ({seconds:.1f}s)"))
    else:
        print(_stateful(False, f"{', '.join(COLLECTIONS)} present in {settings.db_name}"))
    return 0


if __name__ == "__main__":
    status = main()
    # Debian 12's pymongo (3.11) joins its monitor threads at exit, and they notice the closed
    # client only between 0.5 s sleeps: half a second of every state run's check, in a process
    # with nothing left to clean up (the client is closed; the output is flushed here).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
