"""
gunicorn settings for the webstack app (gunicorn 20.1 on Debian 12, newer ones in the tests).

    gunicorn -c gunicorn.conf.py        # serves webstack_app.wsgi:app

Environment:
    WEBSTACK_BIND      where to listen (default 127.0.0.1:8000; the app role uses
                       unix:/run/webstack-app/gunicorn.sock)
    WEBSTACK_WORKERS   number of worker processes (default 2 x CPUs + 1, at most 8)
plus the app's own settings (WEBSTACK_APP_CONFIG, WEBSTACK_<KEY>), checked before any worker starts.
"""

import os
import sys

wsgi_app = "webstack_app.wsgi:app"
proc_name = "webstack-app"

bind = [os.environ.get("WEBSTACK_BIND", "127.0.0.1:8000")]
# Created sockets are rw for the owner and group only: nginx reaches the unix socket through the
# group, other local users cannot.
umask = 0o007

# Sync workers: nginx buffers requests and responses, so a worker is busy only while the app works,
# and the app never waits long (database timeouts of a few seconds).
worker_class = "sync"
MAX_DEFAULT_WORKERS = 8


def _default_workers():
    # The CPUs this process may run on (a container's cpuset), not the host's count.
    return min(2 * len(os.sched_getaffinity(0)) + 1, MAX_DEFAULT_WORKERS)


workers = int(os.environ.get("WEBSTACK_WORKERS") or _default_workers())

# A request never legitimately takes long (database timeouts are 1.5-3 s): a worker silent for
# `timeout` seconds is stuck and gets replaced.
timeout = 30
# On SIGTERM (supervisor stop, rolling deploy) workers finish their requests for at most this long;
# supervisor's stopwaitsecs must be longer.
graceful_timeout = 20

# Request size limits: nginx is the gate, not gunicorn. nginx (large_client_header_buffers 4 8k)
# refuses an over-long request line or header line itself, and answers in the site's JSON; gunicorn
# would answer with its own HTML page, before the app, for a request nginx has already accepted:
# nginx may forward a longer line than it received (it re-escapes the URI, appends to
# X-Forwarded-For). So gunicorn must never be the one refusing on size:
# - request line: 0 is unlimited (valid values 0..8190), on gunicorn 20.1 (Debian 12) and 27;
# - header field size: 0 means unlimited on gunicorn 20.1 but, from 25.2 on, the 8190-byte
#   default, so an explicit bound far above nginx's 8 KiB serves both;
# - header count: 32768 is the most gunicorn accepts (nginx's 32 KiB of headers hold fewer).
limit_request_line = 0
limit_request_field_size = 64 * 1024
limit_request_fields = 32768

# The app logs one line per request itself (with the request id); gunicorn's own log goes to stderr,
# which supervisor collects.
accesslog = None
errorlog = "-"
loglevel = "info"

# gunicorn >= 25 opens a control socket under $HOME by default; supervisor is the control interface
# here. Older versions ignore the unknown setting.
control_socket_disable = True


def on_starting(server):
    """Check the app's configuration once, in the master, before forking workers.

    Otherwise every worker would fail at boot with a traceback and gunicorn would give up with
    "Worker failed to boot"; this way the error is one clear line and the exit status is 1.
    """
    # Imported here, not at the top: the package may only become importable through gunicorn's
    # --pythonpath/--chdir, which are applied after this file is read.
    from webstack_app.config import ConfigError, load_settings

    try:
        load_settings()
    except ConfigError as exc:
        raise RuntimeError(f"webstack-app configuration: {exc}") from None
    finally:
        # Forget the app's modules again: workers must import them themselves, so that a HUP
        # after a deploy boots workers on the new code (they fork from this master, and would
        # otherwise inherit the modules it imported here, whatever is on disk by then).
        for name in [m for m in sys.modules if m.partition(".")[0] == "webstack_app"]:
            del sys.modules[name]
