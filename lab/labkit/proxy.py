"""apt-cacher-ng on the bridge address: the nodes' (and the template's) only way to Debian packages.

It runs as a plain background process with its own config dir and pid file (no systemd on the
host); its upstream is the Debian mirror the host's own apt sources use. Its cache outlives a lab.
"""

import os
import re
import signal
import time
from pathlib import Path

from . import net
from .config import CACHE, STATE
from .run import LabError, say, sh, wait_for

ACNG = STATE / "acng"
PIDFILE = ACNG / "apt-cacher-ng.pid"
PORT = 3142


def host_mirrors():
    """The Debian archive and security URIs in the host's /etc/apt/sources.list*, or defaults."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.suffix in ("", ".list", ".sources") and path.is_file():
            texts.append(path.read_text(errors="replace"))
    uris = []
    for text in texts:
        for raw in text.splitlines():
            line = raw.split("#", 1)[0]
            if line.startswith("URIs:"):
                uris += line.split()[1:]
            elif line.startswith("deb "):
                uris += [w for w in line.split()[1:] if re.match(r"^https?://", w)][:1]
    archive = next((u for u in uris if re.search(r"/debian/?$", u)), "http://deb.debian.org/debian")
    security = next(
        (u for u in uris if re.search(r"/debian-security/?$", u)),
        "http://deb.debian.org/debian-security",
    )
    return archive.rstrip("/") + "/", security.rstrip("/") + "/"


def _config(lab):
    archive, security = host_mirrors()
    return {
        "acng.conf": "\n".join(
            [
                "# Written by the webstack lab (lab/labkit/proxy.py).",
                f"CacheDir: {CACHE / 'apt-cacher-ng'}",
                f"LogDir: {ACNG / 'log'}",
                "SupportDir: /usr/lib/apt-cacher-ng",
                f"BindAddress: {lab.gateway}",
                f"Port: {PORT}",
                f"PidFile: {PIDFILE}",
                "ForeGround: 0",
                "Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian",
                "Remap-secdeb: security.debian.org security.debian.org/debian-security "
                f"deb.debian.org/debian-security /debian-security ; {security}",
                "ExThreshold: 4",
                "FollowIndexFileRemoval: 1",
                "",
            ]
        ),
        "backends_debian": archive + "\n",
    }


def pid():
    """The running proxy's pid, or None."""
    try:
        value = int(PIDFILE.read_text().strip())
        cmdline = Path(f"/proc/{value}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return value if b"apt-cacher-ng" in cmdline else None


def start(lab):
    conf = ACNG / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (ACNG / "log").mkdir(exist_ok=True)
    (CACHE / "apt-cacher-ng").mkdir(parents=True, exist_ok=True)
    changed = False
    for name, text in _config(lab).items():
        path = conf / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed = True
    running = pid()
    if running and changed:
        stop()
        running = None
    if not running:
        sh(["apt-cacher-ng", "-c", conf], quiet=True)
    wait_for(
        lambda: pid() and net.tcp_open(lab.gateway, PORT),
        20,
        what=f"apt-cacher-ng on {lab.gateway}:{PORT}",
    )
    archive, _ = host_mirrors()
    say(f"    apt proxy {lab.proxy_url} (pid {pid()}) → {archive}")


def stop():
    running = pid()
    if not running:
        PIDFILE.unlink(missing_ok=True)
        return False
    os.kill(running, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{running}").exists():
        time.sleep(0.1)
    if Path(f"/proc/{running}").exists():
        os.kill(running, signal.SIGKILL)
    PIDFILE.unlink(missing_ok=True)
    if pid():
        raise LabError("apt-cacher-ng did not stop")
    return True
