"""The bench's clients against a real HTTP server on the loopback: wrk's figures are parsed, and
the request stream counts failures and the longest gap without a successful answer."""

import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from benchkit import hop
from benchkit.stream import Stream


class Handler(BaseHTTPRequestHandler):
    down_until = 0.0

    def do_GET(self):
        status = 503 if time.monotonic() < Handler.down_until else 200
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_stream_counts_an_outage(server):
    with Stream(server, rate=40, timeout=1, max_seconds=10) as stream:
        time.sleep(1)
        Handler.down_until = time.monotonic() + 1.0
        time.sleep(2)
    summary = stream.summary()
    assert 100 <= summary["requests"] <= 130
    assert 30 <= summary["failed"] <= 45  # 1 s of 40 req/s
    assert 0.9 <= summary["longest_gap_s"] <= 1.3


def test_stream_keeps_its_rate_and_stops(server):
    started = time.monotonic()
    with Stream(server, rate=20, max_seconds=1) as stream:
        time.sleep(3)
    assert time.monotonic() - started < 4
    summary = stream.summary()
    assert summary["failed"] == 0 and 19 <= summary["requests"] <= 21


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk is installed by make bench")
def test_wrk_figures_are_parsed(server):
    figures = hop.wrk(server, seconds=1, connections=2, threads=1)
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert figures["requests_per_s"] > 10
    assert figures["non_2xx"] == 0
