"""The bench's clients over TLS, against loopback servers with a throw-away site CA: the request
stream and the new-connection loop verify the certificate (a stranger's CA fails every request),
the plain-http check does not follow a redirect, and wrk speaks https without verifying (what the
results say of it)."""

import shutil
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from benchkit import hop, tlscost
from benchkit.stream import Stream
from support.site_pki import SitePki


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as haproxy answers

    def do_GET(self):
        if self.path.startswith("/redirect"):
            self.send_response(308)
            self.send_header("Location", "https://127.0.0.1/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"node": "app1"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return SitePki(tmp_path_factory.mktemp("pki"))


def _serve(context=None):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="module")
def servers(pki):
    """An https server with a site-CA certificate for 127.0.0.1, and a plain http one."""
    tls = _serve(pki.server_context(pki.issue("vip"), require_client=False))
    plain = _serve()
    yield {
        "https": f"https://127.0.0.1:{tls.server_address[1]}/",
        "http": f"http://127.0.0.1:{plain.server_address[1]}/",
    }
    for httpd in (tls, plain):
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def site_ca(pki):
    return ssl.create_default_context(cafile=str(pki.ca))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """A client context trusting another CA: the server's certificate must not verify."""
    other = SitePki(tmp_path_factory.mktemp("other"), name="another CA")
    return ssl.create_default_context(cafile=str(other.ca))


def test_the_stream_over_https_verifies_the_site_ca(servers, site_ca, stranger):
    with Stream(servers["https"], rate=20, max_seconds=1, context=site_ca) as stream:
        time.sleep(1.5)
    summary = stream.summary()
    assert summary["failed"] == 0 and 19 <= summary["requests"] <= 21
    with Stream(servers["https"], rate=20, max_seconds=1, context=stranger) as stream:
        time.sleep(1.5)
    summary = stream.summary()
    assert summary["requests"] >= 19 and summary["failed"] == summary["requests"]
    assert "CERTIFICATE_VERIFY_FAILED" in str(stream.failures[0][1])


def test_a_new_connection_per_request_both_ways(servers, site_ca):
    https = tlscost.fresh_connections(servers["https"] + "api/whoami", 40, site_ca)
    http = tlscost.fresh_connections(servers["http"] + "api/whoami", 40)
    for figures in (https, http):
        assert figures["requests"] == 40 and figures["failed"] == 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert https["tls"].startswith("TLSv1.") and http["tls"] is None


def test_a_new_connection_to_a_certificate_that_does_not_verify_fails(servers, stranger):
    figures = tlscost.fresh_connections(servers["https"], 5, stranger)
    assert figures["failed"] == 5 and figures["p50_ms"] is None


def test_check_https_verifies_and_says_what_was_negotiated(servers, site_ca, stranger):
    version, cipher = tlscost.check_https(servers["https"] + "api/whoami", site_ca)
    assert version.startswith("TLSv1.") and cipher
    with pytest.raises(ssl.SSLCertVerificationError):
        tlscost.check_https(servers["https"], stranger)


def test_the_plain_http_check_sees_a_redirect_as_a_redirect(servers):
    assert tlscost.get_status(servers["http"] + "api/whoami") == 200
    assert tlscost.get_status(servers["http"] + "redirect") == 308
    tlscost.expect_status(servers["http"] + "redirect", 308, timeout=2)
    with pytest.raises(RuntimeError, match="last answer: 308"):
        tlscost.expect_status(servers["http"] + "redirect", 200, timeout=1)


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk is installed by make bench")
def test_wrk_speaks_https_and_does_not_verify(servers):
    # The server's CA is known to nobody but the tests: wrk measures it all the same.
    figures = hop.wrk(servers["https"] + "api/whoami", seconds=1, connections=2, threads=1)
    assert figures["requests_per_s"] > 10 and figures["non_2xx"] == 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
