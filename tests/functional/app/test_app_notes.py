"""The notes API, the page and the visit counter against a real MongoDB-wire server (FerretDB)."""

import re
from concurrent.futures import ThreadPoolExecutor

from webstack_app.visits import COLLECTION as VISIT_SHARDS


def create(client, text):
    response = client.post("/api/notes", json={"text": text})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response


def test_readyz_is_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["node"] == "func1"
    assert body["db_ping_ms"] >= 0


def test_notes_round_trip(client, db):
    created = [create(client, f"  note {i}\n") for i in range(3)]
    notes = [response.get_json() for response in created]
    for response, note in zip(created, notes, strict=True):
        assert response.headers["Location"] == f"/api/notes/{note['id']}"
        assert note["text"] == note["text"].strip()  # surrounding whitespace removed
        assert note["node"] == "func1"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", note["created_at"])

    listed = client.get("/api/notes").get_json()
    assert listed["notes"] == list(reversed(notes))  # newest first, exactly as returned at creation
    assert listed["next_offset"] is None

    for note in notes:
        assert client.get(f"/api/notes/{note['id']}").get_json() == note

    deleted = notes[1]
    response = client.delete(f"/api/notes/{deleted['id']}")
    assert response.status_code == 204
    assert response.get_data() == b""
    missing = client.get(f"/api/notes/{deleted['id']}")
    assert missing.status_code == 404
    assert missing.get_json()["message"] == f"no note with id {deleted['id']}"
    assert client.delete(f"/api/notes/{deleted['id']}").status_code == 404

    remaining = [n["id"] for n in client.get("/api/notes").get_json()["notes"]]
    assert remaining == [notes[2]["id"], notes[0]["id"]]
    assert db.notes.count_documents({}) == 2


def test_pagination_walks_every_note_once(client):
    ids = [create(client, f"n{i}").get_json()["id"] for i in range(7)]
    seen, offset, pages = [], 0, 0
    while offset is not None:
        page = client.get(f"/api/notes?limit=3&offset={offset}").get_json()
        assert page["limit"] == 3
        assert page["offset"] == offset
        seen += [note["id"] for note in page["notes"]]
        offset = page["next_offset"]
        pages += 1
    assert seen == list(reversed(ids))
    assert pages == 3


def test_limit_bounds(client):
    for i in range(3):
        create(client, f"n{i}")
    assert len(client.get("/api/notes?limit=1").get_json()["notes"]) == 1
    assert len(client.get("/api/notes?limit=100").get_json()["notes"]) == 3


def visit_total(db):
    return sum(shard["count"] for shard in db[VISIT_SHARDS].find())


def test_visit_counter_counts_concurrent_visits_exactly(app, db):
    app.test_client().get("/")  # the database and its collection exist before the burst
    before = visit_total(db)

    def visit(_):
        # One client per request: a test client keeps cookies and is not meant to be shared.
        response = app.test_client().get("/")
        assert response.status_code == 200
        return int(re.search(r'id="visits">(\d+)<', response.get_data(as_text=True))[1])

    with ThreadPoolExecutor(max_workers=10) as pool:
        shown = list(pool.map(visit, range(50)))

    assert visit_total(db) == before + 50
    # Every page showed a total that includes its own visit; the last increment saw all 50.
    assert all(before < value <= before + 50 for value in shown)
    assert max(shown) == before + 50


def test_page_shows_the_server_the_counter_and_the_latest_ten_notes(client):
    for i in range(12):
        create(client, f"note <{i}>")
    page = client.get("/").get_data(as_text=True)
    assert '<span id="node-name">func1</span>' in page
    assert '<strong id="node-address">192.0.2.21</strong>' in page
    assert re.search(r'id="visits">\d+<', page)
    shown = re.findall(r"note &lt;(\d+)&gt;", page)  # escaped, newest first, ten of them
    assert shown == [str(i) for i in range(11, 1, -1)]


def form_token(client):
    page = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def test_form_post_adds_a_note_then_redirects(client):
    token = form_token(client)
    response = client.post("/", data={"csrf_token": token, "text": "from the form"})
    assert response.status_code == 303
    assert response.headers["Location"] in ("/", "http://localhost/")
    page = client.get("/").get_data(as_text=True)
    assert "Note added." in page
    assert "from the form" in page
    assert client.get("/api/notes").get_json()["notes"][0]["text"] == "from the form"


def test_form_post_with_invalid_text_explains_on_the_page(client):
    token = form_token(client)
    response = client.post("/", data={"csrf_token": token, "text": "   "})
    assert response.status_code == 303
    page = client.get("/").get_data(as_text=True)
    assert "&#39;text&#39; must hold 1 to 500 characters, got 0" in page
    assert client.get("/api/notes").get_json()["notes"] == []


def test_form_token_of_another_session_is_refused(app):
    token = form_token(app.test_client())
    response = app.test_client().post("/", data={"csrf_token": token, "text": "forged"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "csrf_token"
