"""Where a converge's time goes, from Salt's own per-state ``start_time`` and ``duration``.

The input is one ``state.apply`` return of every minion, ``{minion: {state_key: state}}`` (the
lab's last-apply.json), and when the master saw each minion return (seconds since the apply
started: `lab apply`'s progress lines). Each state has ``start_time``, the minion's local time of
day (``HH:MM:SS[.ffffff]``), and ``duration`` in milliseconds. The lab's containers share the
host's clock, so the minions' times compare with each other; they do not compare with the
master's seconds since the start, which give each minion's wall time instead.

Salt runs a minion's states one after the other. A state's sub-states (``__state_ran__: true``,
e.g. the file.managed that x509.private_key_managed runs) lie within its time: they are listed
but not added twice.
"""

import dataclasses
import datetime
import statistics
from collections import Counter

from .report import stats

#: What counts as installing packages (module.function of the state key).
PACKAGE_FUNCTIONS = frozenset({"pkg.installed", "pkg.latest"})
PACKAGE_MODULES = frozenset({"pkgrepo"})

#: States that wait on another minion, and what for: (function, state id or None for any).
WAITS = (
    ("webstack_pki.ca_certificate", None, "the CA minion's certificate in the mine"),
    ("x509.certificate_managed", None, "the CA minion to sign this node's certificate"),
    ("webstack_pki.certificate_managed", None, "the CA minion to sign this node's certificate"),
    ("webstack_patroni.member_running", None, "the Patroni cluster's leader (the other db nodes)"),
    ("service.running", "webstack-db-etcd-service-running", "etcd's peers (a quorum)"),
    ("webstack.replset", None, "the replica set's other members"),
    ("webstack.mongodb_user", None, "this mongod to be elected PRIMARY"),
    ("cmd.run", "webstack-app-schema-collections-cmd-run", "the database (the db node)"),
)
SLOWEST = 10
LONGEST = 5
#: Each minion's figures (seconds), per run and as stats across runs.
FIGURES = (
    "packages_s",
    "other_s",
    "states_s",
    "overlap_s",
    "span_s",
    "between_states_s",
    "returned_s",
    "outside_states_s",
)
DAY = 86400.0


@dataclasses.dataclass(frozen=True)
class State:
    """One state's run on one minion: ``start`` in seconds of the day, ``seconds`` it took."""

    minion: str
    id: str
    sls: str
    function: str
    start: float
    seconds: float
    nested: bool  # a sub-state: within its parent's time

    @property
    def end(self):
        return self.start + self.seconds

    @property
    def is_package(self):
        return self.function in PACKAGE_FUNCTIONS or self.function.split(".")[0] in PACKAGE_MODULES

    @property
    def waits_for(self):
        for function, sid, what in WAITS:
            if self.function == function and sid in (None, self.id):
                return what
        return None

    def row(self):
        return {
            "minion": self.minion,
            "id": self.id,
            "sls": self.sls,
            "function": self.function,
            "seconds": round(self.seconds, 3),
        }


def function_of(key):
    """``pkg_|-id_|-name_|-installed`` -> ``pkg.installed``."""
    parts = key.split("_|-")
    return f"{parts[0]}.{parts[-1]}" if len(parts) >= 2 else key


def _seconds_of_day(text):
    t = datetime.time.fromisoformat(text)
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def timed_states(result):
    """Every state with a start and a duration, and ``{minion: why}`` for each minion whose return
    has none (a render error, no return) or only some (``"3 of 30 states untimed"``)."""
    states, untimed = [], {}
    for minion, ret in sorted(result.items()):
        if not isinstance(ret, dict):
            untimed[minion] = "no state return (a render error?)"
            continue
        missing = 0
        for key, state in ret.items():
            try:
                start = _seconds_of_day(state["start_time"])
                seconds = float(state["duration"]) / 1000
            except (TypeError, KeyError, ValueError):
                missing += 1
                continue
            states.append(
                State(
                    minion=minion,
                    id=str(state.get("__id__", key)),
                    sls=str(state.get("__sls__", "")),
                    function=function_of(key),
                    start=start,
                    seconds=seconds,
                    nested=state.get("__state_ran__") is True,
                )
            )
        if missing:
            untimed[minion] = f"{missing} of {len(ret)} states untimed"
    return _across_midnight(states), untimed


def _across_midnight(states):
    """A converge that runs past midnight: the times after it move a day on (a converge takes
    minutes, so a spread of over half a day can only be that)."""
    if states and max(s.start for s in states) - min(s.start for s in states) > DAY / 2:
        return [
            dataclasses.replace(s, start=s.start + DAY) if s.start < DAY / 2 else s for s in states
        ]
    return states


def _busy(states):
    """Seconds in which at least one of ``states`` ran (a parallel state overlaps the others)."""
    busy, end = 0.0, None
    for state in sorted(states, key=lambda s: s.start):
        if end is None or state.start > end:
            busy += state.seconds
            end = state.end
        elif state.end > end:
            busy += state.end - end
            end = state.end
    return busy


def _minion(states, finished):
    own = [s for s in states if not s.nested]
    packages = sum(s.seconds for s in own if s.is_package)
    total = sum(s.seconds for s in own)
    busy = _busy(own)
    span = max(s.end for s in states) - min(s.start for s in states)
    figures = {
        "states": len(states),
        "packages_s": round(packages, 3),
        "other_s": round(total - packages, 3),
        "states_s": round(total, 3),
        # States that ran at the same time (the packages install in their own process while
        # the rest goes on): the sum of the states' times less the time any of them ran.
        "overlap_s": round(total - busy, 3),
        # From its first state's start to its last state's end; less the time any state ran,
        # the time between states (requisites, the state system's own work).
        "span_s": round(span, 3),
        "between_states_s": round(span - busy, 3),
    }
    if finished is not None:
        figures["returned_s"] = round(finished, 3)
        # Before the first state (the job reaching it, pillar and SLS rendering) and after the
        # last (the return reaching the master).
        figures["outside_states_s"] = round(finished - span, 3)
    return figures


def _critical_path(states, minions, finished):
    """The minion that finished last, how long it took, and what it spent its time on."""
    ends = {m: max(s.end for s in states if s.minion == m) for m in minions}
    if set(minions) <= set(finished):
        last = max(minions, key=lambda m: finished[m])
        wall, measured = finished[last], "returned at the master, from the apply's start"
    else:
        last = max(minions, key=ends.get)
        wall = ends[last] - min(s.start for s in states)
        measured = "its last state's end, from the first state's start on any minion"
    own = _slowest_first(s for s in states if s.minion == last)
    return {
        "minion": last,
        "wall_s": round(wall, 3),
        "wall_measured": measured,
        "longest": [s.row() for s in own[:LONGEST]],
        "waits": _waits(own),
    }


def _slowest_first(states):
    """The states' own time, the slowest first (sub-states left out: their parent has them)."""
    return sorted((s for s in states if not s.nested), key=lambda s: -s.seconds)


def _waits(states):
    return [s.row() | {"waits_for": s.waits_for} for s in states if s.waits_for]


def _analysis(states, untimed, finished):
    minions = sorted({s.minion for s in states})
    return {
        "timed": True,
        "untimed": untimed,
        "slowest": [s.row() for s in _slowest_first(states)[:SLOWEST]],
        "minions": {
            m: _minion([s for s in states if s.minion == m], finished.get(m)) for m in minions
        },
        "critical_path": _critical_path(states, minions, finished),
        "waits": _waits(states),
    }


def analyse(result, finished=None):
    """One converge: the slowest states, each minion's figures, the critical path, the waits on
    other minions; ``{"timed": False, "reason": ...}`` when the return has no state times."""
    states, untimed = timed_states(result or {})
    if not states:
        return {"timed": False, "reason": _why_untimed(result, untimed)}
    return _analysis(states, untimed, finished or {})


def _why_untimed(result, untimed):
    if not result:
        return "no return (no last-apply.json, or an empty one)"
    reasons = sorted(set(untimed.values()))
    return "no state has a start_time and a duration" + (
        f" ({'; '.join(reasons)})" if reasons else ""
    )


# --- across converge runs ------------------------------------------------------------------------


def _merged(runs_rows, limit=None):
    """The rows of the same state (minion, id, function) in every run as one, its seconds as
    stats over the runs; the slowest first by median."""
    merged = {}
    for rows in runs_rows:
        for row in rows:
            key = (row["minion"], row["id"], row["function"])
            merged.setdefault(key, {**row, "seconds": []})["seconds"].append(row["seconds"])
    out = [row | {"seconds": stats(row["seconds"])} for row in merged.values()]
    out.sort(key=lambda row: -row["seconds"]["median"])
    return out[:limit] if limit else out


def _most_often_last(runs):
    """The minion that finished last in most runs (on a tie, the one with the longer median
    wall time then)."""
    last = Counter(run["critical_path"]["minion"] for run in runs)

    def median_wall(minion):
        walls = [
            r["critical_path"]["wall_s"] for r in runs if r["critical_path"]["minion"] == minion
        ]
        return statistics.median(walls)

    return max(last, key=lambda m: (last[m], median_wall(m))), dict(last.most_common())


def across_runs(returns):
    """``[(result, finished), ...]``, one per converge run: each run's :func:`analyse` and, over
    the runs that have state times, every figure as min/median/max and n; the reasons of the
    runs that had none."""
    runs, timed = [], []
    for result, finished in returns:
        states, untimed = timed_states(result or {})
        if states:
            run = _analysis(states, untimed, finished or {})
            timed.append((run, _slowest_first(states)))
        else:
            run = {"timed": False, "reason": _why_untimed(result, untimed)}
        runs.append(run)
    out = {
        "runs": len(runs),
        "timed_runs": len(timed),
        "untimed": [run["reason"] for run in runs if not run["timed"]],
        "per_run": runs,
    }
    if not timed:
        return out
    analyses = [run for run, _ in timed]
    minions = sorted({m for run in analyses for m in run["minions"]})
    path, last = _most_often_last(analyses)
    waits = _merged(run["waits"] for run in analyses)
    return out | {
        "slowest": _merged(([s.row() for s in states] for _, states in timed), SLOWEST),
        "minions": {
            m: {f: stats([run["minions"].get(m, {}).get(f) for run in analyses]) for f in FIGURES}
            for m in minions
        },
        "critical_path": {
            "last": last,
            "minion": path,
            "wall_s": stats([run["critical_path"]["wall_s"] for run in analyses]),
            "wall_measured": sorted({run["critical_path"]["wall_measured"] for run in analyses}),
            "longest": _merged(
                ([s.row() for s in states if s.minion == path] for _, states in timed), LONGEST
            ),
            "waits": [row for row in waits if row["minion"] == path],
        },
        "waits": waits,
    }
