"""A constant-rate request stream (open loop: requests leave on schedule, whatever the answers).

The pacing and the bookkeeping are labkit's :class:`~labkit.writes.PacedWrites` (the e2e and
functional tests' write streams use it too); this module only makes the requests.
"""

import http.client
from urllib.parse import urlsplit

from .labctl import PacedWrites, WriteFailed


def connection(url, timeout, context=None):
    """A new (not yet connected) connection for ``url``: https verifies against ``context``."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            parts.hostname, parts.port or 443, timeout=timeout, context=context
        )
    if parts.scheme != "http":
        raise ValueError(f"not an http(s) URL: {url}")
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)


class Stream(PacedWrites):
    """GET ``url`` ``rate`` times per second until stopped (at most ``max_seconds``).

    Each request uses a new connection, as a fresh client would: a connection kept open to a dead
    lb would measure the client's reconnect logic, not the stack. For an https URL that is a full
    TLS handshake per request, the certificate verified against ``context`` (the bench passes the
    site CA's; None is Python's default trust store, which does not know the site CA).
    """

    def __init__(self, url, *, rate=50, timeout=2.0, max_seconds=60, body=None, context=None):
        self.url = url
        self.path = urlsplit(url).path or "/"
        connection(url, timeout, context)  # a bad URL fails here, not in every request
        self.timeout = timeout
        self.context = context
        # With a body: POST it as JSON, and a success is 201 (a write acknowledged).
        self.body = body
        super().__init__(
            self._request,
            rate=rate,
            max_seconds=max_seconds,
            open_loop=True,
            workers=max(8, int(rate * timeout) + 4),
            join_timeout=None,
        )

    def _request(self, seq):
        try:
            conn = connection(self.url, self.timeout, self.context)
            try:
                if self.body is None:
                    conn.request("GET", self.path)
                else:
                    headers = {"Content-Type": "application/json"}
                    conn.request("POST", self.path, body=self.body, headers=headers)
                response = conn.getresponse()
                response.read()
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            # ssl.SSLError (a certificate that does not verify, too) is an OSError.
            raise WriteFailed(f"{type(exc).__name__}: {exc}") from exc
        if response.status != (200 if self.body is None else 201):
            raise WriteFailed(response.status)
        return seq, response.status
