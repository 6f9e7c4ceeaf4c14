"""
The app node's HTTP probes: ``/healthz`` and ``/readyz`` through nginx and directly on gunicorn's
unix socket, and the wait for health the rolling deploy uses. Standard library only (the HTTP
client is ``_utils/webstack_http.py``).

nginx's URL defaults to ``http://<node address>:<ports.app>`` from the topology
(``webstack_topology.node``), gunicorn's socket to pillar ``webstack:lookup:app:socket``.
"""

import logging

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "webstack_app"

PATHS = ("healthz", "readyz")


def __virtual__():
    if "webstack_http.get" not in __utils__:
        return (False, "webstack_app: the webstack_http utils module is not synced")
    return __virtualname__


def _get(path, **kwargs):
    return __utils__["webstack_http.get"](path, **kwargs)


def _base_url(node, url):
    if url:
        return url.rstrip("/")
    address = (node.get("self") or {}).get("address")
    if not address:
        raise CommandExecutionError(
            "no url= given and this minion has no address in the topology (webstack:topology)"
        )
    return f"http://{address}:{(node.get('ports') or {}).get('app', 80)}"


def health(url=None, app_socket=None, timeout=2.0):
    """
    ``/healthz`` and ``/readyz`` through nginx (``url``) and directly on gunicorn's socket
    (``app_socket``): ``{nginx, gunicorn, healthy, ready}``; healthy when both answer 200 on
    ``/healthz``, ready when nginx answers 200 on ``/readyz``.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_app.health
        salt-call webstack_app.health url=http://127.0.0.1:8080
    """
    base = _base_url(__utils__["webstack_config.node"](__salt__), url)
    app_socket = app_socket or __utils__["webstack_config.lookup"](__pillar__, "app:socket")
    nginx = {path: _get(f"/{path}", url=base, timeout=timeout) for path in PATHS}
    gunicorn = {path: _get(f"/{path}", unix_socket=app_socket, timeout=timeout) for path in PATHS}
    view = {
        "nginx": dict(nginx, url=base),
        "gunicorn": dict(gunicorn, socket=app_socket),
        "healthy": nginx["healthz"]["ok"] and gunicorn["healthz"]["ok"],
        "ready": nginx["readyz"]["ok"],
    }
    log.debug("webstack_app: %s healthy=%s ready=%s", base, view["healthy"], view["ready"])
    return view


def wait_healthy(timeout=120, interval=1, path="/healthz", url=None):
    """
    Wait until this app node answers 200 on its health endpoint through nginx; fail after
    ``timeout`` seconds (the rolling deploy uses it before putting the node back in service).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_app.wait_healthy timeout=60
    """
    base = _base_url(__utils__["webstack_config.node"](__salt__), url)
    for waited in __utils__["webstack_poll.until"](timeout, interval):
        answer = _get(path, url=base)
        if answer["ok"]:
            log.debug("webstack_app: %s%s healthy after %ss", base, path, waited)
            return answer
    raise CommandExecutionError(
        f"{base}{path} not healthy after {timeout}s: "
        + (f"HTTP {answer['status']}" if answer["status"] else answer.get("error", "?"))
    )
