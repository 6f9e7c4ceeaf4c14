"""Salt commands on the master container: ping, sync, state.apply with a per-minion summary."""

import hashlib
import json
import os
import time

from . import lxc, progress
from .config import MASTER_NAME, REPO, STATE
from .run import LabError, say

LAST_APPLY = STATE / "last-apply.json"
#: The digest of the custom modules the minions last synced (minions do not sync them on each
#: state.apply: configure-minion sets autoload_dynamic_modules off).
SYNCED = STATE / "synced-extensions.sha256"
#: What saltutil.sync_all sends to the minions (the runners stay on the master).
EXTENSION_DIRS = ("_modules", "_states", "_utils")
#: The full return is for root's eyes only: its comments and changes describe every node.
LAST_APPLY_MODE = 0o600


def salt(*args, capture=False, check=False, timeout=None):
    return lxc.attach(MASTER_NAME, "salt", *args, capture=capture, check=check, timeout=timeout)


def salt_json(target, function, *args, timeout=30):
    """``salt --static --out=json``: ``{minion: return}``; a silent minion has no key."""
    out = salt(
        "--out=json",
        "--static",
        "-t",
        str(timeout),
        target,
        function,
        *args,
        capture=True,
        timeout=timeout + 120,
    )
    start = out.find("{")
    if start < 0:
        return {}
    try:
        return json.loads(out[start:])
    except ValueError:
        return {}


def minions_up(wait=3):
    """The minions that answer a ping now (manage.up with short timeouts: a missing minion costs
    seconds, where `salt '*' test.ping` would wait for gather_job_timeout)."""
    out = lxc.attach(
        MASTER_NAME,
        "salt-run",
        "--out=json",
        "manage.up",
        f"timeout={wait}",
        f"gather_job_timeout={wait}",
        check=False,
        capture=True,
        timeout=120,
    )
    start = out.find("[")
    try:
        return set(json.JSONDecoder().raw_decode(out[start:])[0]) if start >= 0 else set()
    except ValueError:
        return set()


def wait_minions(lab, timeout=120):
    wanted = set(lab.minions)
    deadline = time.monotonic() + timeout
    answered = set()
    while time.monotonic() < deadline:
        answered = minions_up()
        if wanted <= answered:
            say(f"    {len(answered)} minions answer ({', '.join(sorted(answered))})")
            return
        time.sleep(1)
    missing = ", ".join(sorted(wanted - answered))
    raise LabError(f"minions not answering after {timeout}s: {missing}")


def extension_digest():
    """sha256 over the custom modules' paths and contents, as the minions would get them."""
    digest = hashlib.sha256()
    for name in EXTENSION_DIRS:
        for path in sorted((REPO / name).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def synced_digest():
    """The digest recorded by the last saltutil.sync_all; None before the first. `lab apply`
    syncs again when it differs: a state.apply no longer syncs the custom modules itself (8 s
    of every minion's run, measured)."""
    try:
        return SYNCED.read_text().strip()
    except OSError:
        return None


def sync_all(lab):
    digest = extension_digest()
    result = salt_json("*", "saltutil.sync_all", timeout=60)
    missing = set(lab.minions) - set(result)
    if missing:
        raise LabError(f"saltutil.sync_all: no answer from {', '.join(sorted(missing))}")
    bad = {k: v for k, v in result.items() if not isinstance(v, dict)}
    if bad:
        raise LabError(f"saltutil.sync_all failed: {json.dumps(bad)[:2000]}")
    modules = sorted({m for v in result.values() for m in v.get("modules", [])})
    say(f"    synced on {len(result)} minions; modules: {', '.join(modules) or 'none new'}")
    SYNCED.write_text(digest + "\n")


def _failure(key, state):
    """One failed state: its id, its comment and, for a command, the end of its stderr/stdout."""
    text = f"{state.get('__id__', key)}: {str(state.get('comment', '')).strip()}"
    changes = state.get("changes") if isinstance(state.get("changes"), dict) else {}
    lines = (changes.get("stderr") or changes.get("stdout") or "").strip().splitlines()
    if lines:
        # Lines that say "error" (pip and co. print the cause well above their last line) + the end.
        errors = [line for line in lines[:-6] if "error" in line.lower()][:6]
        text += "\n" + "\n".join([*errors, *lines[-6:]])
    return text


def summarize(result, wanted):
    """Per minion: total/failed/changed states and the failures' ids and comments."""
    summary = {}
    for minion in sorted(wanted | set(result)):
        ret = result.get(minion)
        entry = {"states": 0, "failed": 0, "changed": 0, "errors": []}
        if ret is None:
            entry["errors"].append("no answer (minion did not return)")
        elif isinstance(ret, dict):
            for key, state in ret.items():
                if not isinstance(state, dict):
                    entry["errors"].append(f"{key}: {state}")
                    continue
                entry["states"] += 1
                if state.get("changes"):
                    entry["changed"] += 1
                if state.get("result") is False:
                    entry["failed"] += 1
                    entry["errors"].append(_failure(key, state))
        else:  # render errors come back as a list (or a string)
            errors = ret if isinstance(ret, list) else [ret]
            entry["errors"] += [str(e).strip() for e in errors]
        summary[minion] = entry
    return summary


def write_private(path, text, mode=LAST_APPLY_MODE):
    """``text`` to ``path`` with ``mode`` from its first byte on (an earlier, more open file is
    replaced, not rewritten in place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)  # whatever the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def apply_command(target, timeout):
    """The salt CLI on the master for ``state.apply``: each minion's return printed as it comes
    (no ``--static``), and at once: unbuffered, or the CLI's print() would hold the end of each
    return in its buffer while stdout is a pipe, until the next minion's pushed it out."""
    return lxc.attach_args(
        MASTER_NAME,
        "salt",
        "--out=json",
        "-t",
        str(timeout),
        target,
        "state.apply",
        env={"PYTHONUNBUFFERED": "1"},
    )


def _counts(entry):
    status = "ok" if not entry["errors"] else "FAILED"
    return (
        f"{status:<6} states={entry['states']} changed={entry['changed']} failed={entry['failed']}"
    )


def progress_line(minion, seconds, what):
    """The line said the moment ``minion`` returns, ``seconds`` after the apply started; ``what``
    is its counts (as in the summary) or ``no answer``. The bench reads these lines
    (bench/benchkit/converge.py: when each minion returned)."""
    return f"    [{seconds:6.1f}s] {minion:<10} {what}"


def _first_line(error, width=160):
    line = error.splitlines()[0] if error else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _say_returned(minion, ret, seconds):
    entry = summarize({minion: ret}, set())[minion]
    say(progress_line(minion, seconds, _counts(entry)))
    # Just each failure's first line here; the summary at the end has them in full.
    for error in entry["errors"]:
        say("      - " + _first_line(error))


def _why_nothing(run):
    """What the salt CLI said when no minion returned anything (its stderr, stray stdout)."""
    said = [*run.noise, *run.stderr.strip().splitlines()][-10:]
    killed = [f"(salt killed after {run.kill_after}s)"] if run.killed else []
    for line in [*killed, *said]:
        say("    salt: " + line)


def apply(lab, target="*", timeout=1800):
    """``state.apply`` on ``target``: a line per minion as it returns (seconds since the start,
    its counts, its failures), then a line per minion and every failure in full, and the full
    return in LAST_APPLY; returns (ok, summary)."""
    wanted = set(lab.minions) if target == "*" else set()
    result, silent = {}, set()
    run = progress.SaltStream(apply_command(target, timeout), kill_after=timeout + 120)
    for minion, ret, seconds in run:
        if progress.did_not_return(ret):
            silent.add(minion)  # in the summary below as "no answer", like any minion missing
            say(progress_line(minion, seconds, "no answer"))
            continue
        result[minion] = ret
        _say_returned(minion, ret, seconds)
    if not result:
        _why_nothing(run)
    write_private(LAST_APPLY, json.dumps(result, indent=2))
    summary = summarize(result, wanted | silent)
    for minion, entry in summary.items():
        say(f"    {minion:<10} {_counts(entry)}")
        for error in entry["errors"]:
            say("      - " + error.replace("\n", "\n        "))
    ok = bool(summary) and all(not e["errors"] for e in summary.values())
    say(f"    full return: {LAST_APPLY}")
    return ok, summary
