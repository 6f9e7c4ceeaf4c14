"""Commands and timed steps: a step prints `==> step…` first, `<== step (N.Ns)` last."""

import contextlib
import os
import subprocess
import sys
import time


class LabError(RuntimeError):
    """A step failed; the message says which and why (printed without a traceback)."""


#: (step name, seconds, ok) in the order the steps ran; the summary prints them.
TIMINGS = []


def say(message):
    print(message, flush=True)


def warn(message):
    print(f"lab: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(name):
    """Print a progress line at the start and at the end of a step, and record its duration."""
    say(f"==> {name}…")
    started = time.monotonic()
    ok = False
    try:
        yield
        ok = True
    finally:
        elapsed = time.monotonic() - started
        TIMINGS.append((name, elapsed, ok))
        say(f"<== {name} ({elapsed:.1f}s){'' if ok else ' FAILED'}")


#: The environment of commands run in a chroot: none of the host's settings (PIP_*, ...) leak in.
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}


def sh(
    args, *, check=True, capture=False, env=None, stdin=None, timeout=None, quiet=False, clean=False
):
    """Run a command (a list, never a shell string). ``capture`` returns stdout as text; ``clean``
    drops the caller's environment (``env`` is added to :data:`CLEAN_ENV`)."""
    full_env = (
        None
        if env is None and not clean
        else {**(CLEAN_ENV if clean else os.environ), **(env or {})}
    )
    proc = subprocess.run(
        [str(a) for a in args],
        input=stdin,
        text=True,
        env=full_env,
        timeout=timeout,
        stdout=subprocess.PIPE if capture or quiet else None,
        stderr=subprocess.PIPE if capture or quiet else None,
        check=False,
    )
    if check and proc.returncode != 0:
        # Captured output is not on the terminal: the error shows its tails (stdout's too).
        detail = (
            f"{(proc.stdout or '').strip()[-1000:]}\n{(proc.stderr or '').strip()[-2000:]}".strip()
            if (capture or quiet)
            else ""
        )
        raise LabError(
            f"command failed ({proc.returncode}): {' '.join(map(str, args))}\n{detail}".rstrip()
        )
    return proc.stdout if capture else proc


def wait_for(predicate, timeout, interval=0.5, what="condition", error=LabError):
    """Poll ``predicate()`` until it returns a true value; return ``(value, seconds waited)``.

    After ``timeout`` seconds raise ``error(message)``: an exception type (LabError, the lab's
    own; AssertionError in the tests) or any callable that makes one (to add, say, a log tail).
    """
    started = time.monotonic()
    while True:
        value = predicate()
        elapsed = time.monotonic() - started
        if value:
            return value, elapsed
        if elapsed > timeout:
            raise error(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
