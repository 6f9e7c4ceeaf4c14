"""The bench's handle on the lab: the `lab` CLI for actions, labkit for fast reads."""

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lab"))

from labkit import config, health, lxc, run, saltcmd  # noqa: E402
from labkit.writes import PacedWrites, WriteFailed  # noqa: E402, F401 - for benchkit.stream

LAB_CLI = [sys.executable, str(REPO / "lab" / "lab")]
#: The full return of the lab's last state.apply (root's only).
LAST_APPLY = saltcmd.LAST_APPLY


def say(message):
    print(message, flush=True)


def lab_cmd(*args, check=True, quiet=True, timeout=1800):
    """Run `lab ARGS`; returns (seconds, output)."""
    started = time.monotonic()
    proc = subprocess.run(
        [*LAB_CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    seconds = time.monotonic() - started
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"lab {' '.join(args)} exited {proc.returncode}:\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    if not quiet:
        say(proc.stdout.rstrip())
    return seconds, proc.stdout + proc.stderr


def load():
    return config.load()


def vip_holders(lab):
    return health.vip_holders(lab)


def vip_url(lab):
    """``https://VIP/``: what clients use (haproxy terminates TLS with a site-CA certificate)."""
    return health.urls(lab)[0]


def _url(scheme, address, port, default):
    return f"{scheme}://{address}{'' if port == default else f':{port}'}/"


def vip_http_url(lab):
    """``http://VIP/``: a 308 to https unless the lbs were told to serve plain http too."""
    return _url("http", lab.vip, lab.derived["ports"]["frontend"], 80)


def app_url(lab, index=0):
    """One app node's nginx, plain http (the host is in ``clients.direct_app_access``)."""
    node = lab.derived["app"][index]
    return _url("http", node["address"], lab.derived["ports"]["app"], 80)


def fetch_ca():
    """Copy the site CA's certificate out of the master (as `lab up` does once healthy)."""
    return health.fetch_ca()


def tls_context():
    """Verifies against the site CA (``.lab/ca.crt``, copied out by every `lab up`). Made anew
    each time: a rebuilt lab has a new CA."""
    return health.tls_context()


def attach(name, *command, check=True):
    return lxc.attach(name, *command, check=check, capture=True)


def wait_for(predicate, timeout, interval=0.2, what="condition"):
    """labkit's poll: ``(value, seconds)``; RuntimeError (the bench's) after ``timeout``."""
    return run.wait_for(predicate, timeout, interval, what, error=RuntimeError)
