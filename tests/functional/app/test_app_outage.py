"""
The database dies and comes back: the app answers 503 JSON fast, stays healthy for haproxy, and
recovers by itself without losing an acknowledged note.
"""

import time

import pytest

# The bound for a 503 with the default timeouts (server selection 1.5 s).
DOWN_ANSWER_SECONDS = 2
RECOVERY_SECONDS = 10


def timed(call, *args, **kwargs):
    started = time.monotonic()
    response = call(*args, **kwargs)
    return response, time.monotonic() - started


@pytest.fixture
def outage(ferretdb):
    """Crash FerretDB (SIGKILL); whatever happens in the test, it is running again afterwards."""
    ferretdb.stop(kill=True)
    yield ferretdb
    ferretdb.start()


def test_database_outage_and_recovery(make_app, ferretdb, request):
    app = make_app()  # default timeouts, as deployed
    client = app.test_client()
    acknowledged = []
    for i in range(5):
        response = client.post("/api/notes", json={"text": f"before the outage {i}"})
        assert response.status_code == 201
        acknowledged.append(response.get_json())

    server = request.getfixturevalue("outage")

    for method, path, kwargs in [
        ("get", "/readyz", {}),
        ("get", "/api/notes", {}),
        ("post", "/api/notes", {"json": {"text": "during the outage"}}),
        ("get", f"/api/notes/{acknowledged[0]['id']}", {}),
        ("delete", f"/api/notes/{acknowledged[0]['id']}", {}),
    ]:
        response, seconds = timed(getattr(client, method), path, **kwargs)
        assert response.status_code == 503, (method, path)
        assert response.mimetype == "application/json"
        assert seconds < DOWN_ANSWER_SECONDS, (method, path, seconds)
        body = response.get_json()
        if path == "/readyz":
            assert body["status"] == "unavailable"
            assert body["error"].startswith("database unreachable")
        else:
            assert body["error"] == "database_unavailable"

    response, seconds = timed(client.get, "/healthz")
    assert response.status_code == 200
    assert seconds < 0.5

    page, seconds = timed(client.get, "/")
    assert page.status_code == 503
    assert seconds < DOWN_ANSWER_SECONDS
    assert '<span id="node-name">func1</span>' in page.get_data(as_text=True)

    server.start()  # same port, same PostgreSQL database; the app is not touched

    deadline = time.monotonic() + RECOVERY_SECONDS
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the app did not reconnect after FerretDB came back"
        time.sleep(0.1)

    for note in acknowledged:
        assert client.get(f"/api/notes/{note['id']}").get_json() == note
    listed = client.get("/api/notes").get_json()["notes"]
    assert [n["id"] for n in listed] == [n["id"] for n in reversed(acknowledged)]
    assert client.post("/api/notes", json={"text": "after the outage"}).status_code == 201
    assert client.get("/").status_code == 200
