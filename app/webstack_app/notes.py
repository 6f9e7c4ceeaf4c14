"""Notes in the database, and their JSON representation."""

from datetime import UTC, datetime

from pymongo import DESCENDING

COLLECTION = "notes"
# Newest first; _id breaks ties between notes created within the same millisecond.
_NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]


def _now():
    # BSON dates have millisecond precision: truncating here makes the note returned by a create
    # identical to the one read back later.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def to_json(note):
    """The API representation of a stored note."""
    created_at = note["created_at"].astimezone(UTC)
    return {
        "id": str(note["_id"]),
        "text": note["text"],
        "created_at": created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "node": note.get("node"),
    }


class NoteStore:
    """Create, list, read and delete notes; every method may raise a PyMongoError."""

    def __init__(self, database, node_name):
        self._database = database
        self._node_name = node_name

    @property
    def _collection(self):
        return self._database.db[COLLECTION]

    def add(self, text):
        """Store a note (``text`` already validated) and return it."""
        note = {"text": text, "created_at": _now(), "node": self._node_name}
        note["_id"] = self._collection.insert_one(note).inserted_id
        return note

    def recent(self, limit, offset=0):
        """Up to ``limit`` notes, newest first, skipping the ``offset`` newest."""
        return list(self._collection.find().sort(_NEWEST_FIRST).skip(offset).limit(limit))

    def get(self, note_id):
        """The note with this ObjectId, or None."""
        return self._collection.find_one({"_id": note_id})

    def delete(self, note_id):
        """Delete the note; False when there was none."""
        return self._collection.delete_one({"_id": note_id}).deleted_count == 1
