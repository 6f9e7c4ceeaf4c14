"""Through the VIP: requests spread over every app server, and a note round-trips the database."""

import json

from e2e_lab import http_get, http_post_json


def test_twenty_requests_reach_every_app_server(healthy):
    lab = healthy
    nodes = []
    for _ in range(20):
        status, body = http_get(lab.vip_url + "api/whoami")
        assert status == 200, body
        nodes.append(json.loads(body)["node"])
    assert set(nodes) == set(lab.apps), nodes


def test_a_note_written_through_the_vip_is_read_back(healthy):
    lab = healthy
    status, body = http_post_json(lab.vip_url + "api/notes", {"text": "e2e round trip"})
    assert status == 201, body
    note = json.loads(body)
    # Read it back through the VIP several times: whichever app server answers has it.
    for _ in range(len(lab.apps) * 2):
        status, body = http_get(f"{lab.vip_url}api/notes/{note['id']}")
        assert status == 200, body
        assert json.loads(body)["text"] == "e2e round trip"
    status, body = http_get(lab.vip_url)
    assert status == 200 and "e2e round trip" in body
