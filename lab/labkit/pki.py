"""Salt keys, generated on the host and preseeded on both sides (no auto-accept)."""

import os
import shutil
import sys
from pathlib import Path

from .config import STATE
from .run import LabError, sh

KEYS = STATE / "pki"


def _salt_key(template):
    """salt-key from the lab's venv, else PATH, else the template's Salt run by host python3."""
    for candidate in (Path(sys.executable).parent / "salt-key", shutil.which("salt-key")):
        if candidate and os.access(candidate, os.X_OK):
            return [str(candidate)], {}
    python = template / "rootfs/opt/salt/bin/python"
    code = "import sys; from salt.scripts import salt_key; sys.argv[0] = 'salt-key'; salt_key()"
    return [str(python), "-c", code], {"PYTHONDONTWRITEBYTECODE": "1"}


def ensure(names, template):
    """Make a key pair for every minion id that has none; return ``{id: (pem_text, pub_text)}``."""
    KEYS.mkdir(parents=True, exist_ok=True)
    KEYS.chmod(0o700)
    command, env = _salt_key(template)
    pairs = {}
    for name in names:
        pem, pub = KEYS / f"{name}.pem", KEYS / f"{name}.pub"
        if not (pem.exists() and pub.exists()):
            sh(
                [*command, f"--gen-keys={name}", f"--gen-keys-dir={KEYS}", "--log-level=quiet"],
                env=env,
                quiet=True,
            )
        if not (pem.exists() and pub.exists()):
            raise LabError(f"salt-key did not write {pem} and {pub}")
        pem.chmod(0o400)
        pairs[name] = (pem.read_text(), pub.read_text())
    return pairs


def forget(name):
    for suffix in ("pem", "pub"):
        (KEYS / f"{name}.{suffix}").unlink(missing_ok=True)
