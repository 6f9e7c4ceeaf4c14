"""The Salt wheelhouse: salt + pymongo and every pinned dependency as wheels, built once per input.

pip builds salt and timelib from sdists; that is done once here, with Debian's own python3 (the
nodes' python3), and every template build installs from the wheelhouse with --no-index.
"""

import shutil
import tempfile
from pathlib import Path

from .config import CACHE, REPO, digest
from .run import say, sh

REQUIREMENTS = REPO / "lab" / "requirements-node.txt"
PYTHON = "/usr/bin/python3"  # Debian 12's python3.11, the same as in the template


def path():
    version = sh([PYTHON, "-c", "import sys; print(sys.version)"], capture=True)
    return CACHE / f"lab-wheelhouse-{digest(REQUIREMENTS, version)}"


def ensure():
    """Return the wheelhouse directory, building it when missing."""
    target = path()
    if (target / "requirements.txt").exists():
        say(f"    cached: {target}")
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-lab-wheelhouse-", dir=CACHE))
    try:
        sh([PYTHON, "-m", "venv", work / "venv"])
        sh(
            [
                work / "venv/bin/pip",
                "wheel",
                "-q",
                "--no-input",
                "-w",
                work / "wheels",
                "-r",
                REQUIREMENTS,
            ]
        )
        shutil.copy(REQUIREMENTS, work / "wheels" / "requirements.txt")
        (work / "wheels").rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"    built: {target} ({len(list(target.glob('*.whl')))} wheels)")
    return target
