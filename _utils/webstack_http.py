"""
HTTP for the webstack modules, with the standard library only: a GET that reports instead of
raising (the app probes), over TCP or a unix socket, and a JSON request that raises with its
cause (Patroni's REST API).

Plain Python (synced by ``saltutil.sync_utils``, reached through ``__utils__``).
"""

import base64
import http.client
import json
import logging
import socket
import ssl
import urllib.parse

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

TIMEOUT = 2.0
USER_AGENT = "salt-webstack"


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a unix socket (gunicorn's)."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _connection(url, unix_socket, timeout):
    if unix_socket:
        return UnixHTTPConnection(unix_socket, timeout)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise CommandExecutionError(f"url: {url!r} is not an http://host[:port] URL")
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)


def get(path, url=None, unix_socket=None, timeout=TIMEOUT):
    """
    ``GET path`` on ``url`` (``http://host[:port]``) or on ``unix_socket``:
    ``{url, status, ok, body}`` (``body`` parsed as JSON when it is), or ``{url, status: None,
    ok: False, error}`` when the connection fails. A malformed ``url`` raises.
    """
    where = f"unix:{unix_socket}" if unix_socket else url
    conn = _connection(url, unix_socket, timeout)
    log.debug("webstack: GET %s%s", where, path)
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT})
        response = conn.getresponse()
        raw = response.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        log.debug("webstack: GET %s%s failed: %r", where, path, exc)
        return {
            "url": f"{where}{path}",
            "status": None,
            "ok": False,
            "error": str(exc) or repr(exc),
        }
    finally:
        conn.close()
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")[:200]
    return {"url": f"{where}{path}", "status": response.status, "ok": response.status == 200,
            "body": body}  # fmt: skip


def tls_context(tls):
    """A client TLS context from ``{"ca", "cert", "key"}``: the server verified against the CA
    (name and address checked), this node's certificate presented when the server asks."""
    context = ssl.create_default_context(cafile=tls["ca"])
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.get("cert"):
        context.load_cert_chain(tls["cert"], tls.get("key"))
    return context


def request_json(
    host, port, path, *, method="GET", body=None, auth=None, timeout=TIMEOUT, tls=None
):
    """
    ``(status, parsed JSON or text or None)`` of one request to ``host:port``; ``body`` is sent
    as JSON, ``auth`` (``(user, password)``) as HTTP basic authentication; ``tls``
    (``{"ca", "cert", "key"}``): over https, see :func:`tls_context`. A connection failure
    raises a ``CommandExecutionError`` naming the URL and the cause (chained).
    """
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    scheme = "https" if tls else "http"
    log.debug("webstack: %s %s://%s:%s%s", method, scheme, host, port, path)
    try:
        if tls:
            conn = http.client.HTTPSConnection(
                host, port, timeout=float(timeout), context=tls_context(tls)
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=float(timeout))
    except (OSError, ValueError) as exc:
        raise CommandExecutionError(f"{host}:{port}: TLS setup: {exc}") from exc
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        raise CommandExecutionError(f"{host}:{port}{path}: {exc or repr(exc)}") from exc
    finally:
        conn.close()
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:
        data = raw
    return response.status, data
