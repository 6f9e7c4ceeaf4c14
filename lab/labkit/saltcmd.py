"""Salt commands on the master container: ping, sync, state.apply with a per-minion summary."""

import json
import time

from . import lxc
from .config import MASTER_NAME, STATE
from .run import LabError, say

LAST_APPLY = STATE / "last-apply.json"


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


def wait_minions(lab, timeout=120):
    wanted = {n.name for n in lab.nodes}
    deadline = time.monotonic() + timeout
    answered = {}
    while time.monotonic() < deadline:
        answered = {k for k, v in salt_json("*", "test.ping", timeout=5).items() if v is True}
        if wanted <= answered:
            say(f"    test.ping: {len(answered)} minions answered ({', '.join(sorted(answered))})")
            return
        time.sleep(1)
    raise LabError(
        f"minions not answering after {timeout}s: {', '.join(sorted(wanted - answered))}"
    )


def sync_all(lab):
    result = salt_json("*", "saltutil.sync_all", timeout=60)
    missing = {n.name for n in lab.nodes} - set(result)
    if missing:
        raise LabError(f"saltutil.sync_all: no answer from {', '.join(sorted(missing))}")
    bad = {k: v for k, v in result.items() if not isinstance(v, dict)}
    if bad:
        raise LabError(f"saltutil.sync_all failed: {json.dumps(bad)[:2000]}")
    modules = sorted({m for v in result.values() for m in v.get("modules", [])})
    say(f"    synced on {len(result)} minions; modules: {', '.join(modules) or 'none new'}")


def _failure(key, state):
    """One failed state: its id, its comment and, for a command, the end of its stderr/stdout."""
    text = f"{state.get('__id__', key)}: {str(state.get('comment', '')).strip()}"
    changes = state.get("changes") if isinstance(state.get("changes"), dict) else {}
    output = (changes.get("stderr") or changes.get("stdout") or "").strip()
    if output:
        text += "\n" + "\n".join(output.splitlines()[-8:])
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


def apply(lab, target="*", timeout=1800):
    """``state.apply`` on ``target``: a line per minion and every failure; returns (ok, summary)."""
    result = salt_json(target, "state.apply", timeout=timeout)
    STATE.mkdir(parents=True, exist_ok=True)
    LAST_APPLY.write_text(json.dumps(result, indent=2))
    wanted = {n.name for n in lab.nodes} if target == "*" else set()
    summary = summarize(result, wanted)
    for minion, entry in summary.items():
        status = "ok" if not entry["errors"] else "FAILED"
        counts = f"states={entry['states']} changed={entry['changed']} failed={entry['failed']}"
        say(f"    {minion:<10} {status:<6} {counts}")
        for error in entry["errors"]:
            say("      - " + error.replace("\n", "\n        "))
    ok = bool(summary) and all(not e["errors"] for e in summary.values())
    say(f"    full return: {LAST_APPLY}")
    return ok, summary
