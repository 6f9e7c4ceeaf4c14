"""How a converge's cost grows with the cluster: the same converge and floor as the converge
phase at several sizes of the lab (`lab up --nodes`), an idempotent re-apply of the whole cluster
at once, and what the salt-master itself spends meanwhile (CPU seconds, peak memory), sampled in
its container from /proc while the converge runs.
"""

import os
import threading
import time

from . import converge, hop, labctl

#: (--nodes spec, node count): 5, 9 and 13 nodes. One db node at each size: three would make a
#: Patroni cluster, whose converge waits on etcd's quorum and has no apt-get floor to compare to.
SIZES = (("lb=2,app=2,db=1", 5), ("lb=3,app=5,db=1", 9), ("lb=3,app=9,db=1", 13))

#: Every process whose command line names salt-master (its main process and its workers), as
#: /proc/PID/stat and its VmRSS line. Not this shell ($$): its own command line holds the word.
MASTER_PROCESSES = (
    "for d in /proc/[0-9]*; do"
    ' [ "${d#/proc/}" = "$$" ] && continue;'
    ' case "$(tr "\\0" " " < "$d/cmdline" 2>/dev/null)" in'
    ' *salt-master*) cat "$d/stat"; grep "^VmRSS:" "$d/status";; esac;'
    " done 2>/dev/null"
)


def parse_master_sample(text, clock_ticks=None):
    """(CPU seconds, resident memory in MiB) of the processes in ``text``: their /proc/PID/stat
    lines (``hop.parse_proc_stat``) and ``VmRSS:  N kB`` lines."""
    stat = "\n".join(line for line in text.splitlines() if not line.startswith("VmRSS:"))
    rss_kib = sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("VmRSS:"))
    return hop.parse_proc_stat(stat, clock_ticks), rss_kib / 1024


class MasterSampler:
    """While in its ``with`` block: the salt-master's CPU seconds used and its peak memory."""

    def __init__(self, sample=None, interval=1.0):
        self._sample = sample or self._from_container
        self.interval = interval
        self.cpu_s = None
        self.peak_rss_mib = 0.0
        self.seconds = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._first = None
        self._last = None

    @staticmethod
    def _from_container():
        out = labctl.attach(labctl.config.MASTER_NAME, "sh", "-c", MASTER_PROCESSES, check=False)
        return parse_master_sample(out or "")

    def _take(self):
        cpu, rss = self._sample()
        self.peak_rss_mib = max(self.peak_rss_mib, rss)
        if self._first is None:
            self._first = cpu
        self._last = cpu

    def _run(self):
        while not self._stop.wait(self.interval):
            self._take()

    def __enter__(self):
        self._started = time.monotonic()
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        self._take()
        self.seconds = time.monotonic() - self._started
        self.cpu_s = round(self._last - self._first, 2)

    def figures(self):
        """CPU seconds, their share of one core over the block, peak resident MiB."""
        share = self.cpu_s / self.seconds if self.seconds else None
        return {
            "cpu_s": self.cpu_s,
            "cpu_share_of_one_core": round(share, 3) if share is not None else None,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
        }


def measure_size(spec, nodes):
    """One converge at ``spec`` (`lab up --nodes`): the floor, the converge with the master
    sampled, and an idempotent re-apply of every minion at once."""
    os.environ["LAB_NODES"] = spec
    try:
        converge.bare_lab()
        floor_s, _ = converge.floor(labctl.load())
        converge.bare_lab()
        with MasterSampler() as master:
            apply_s, minions, _ = converge.full_apply()
        failed = sorted(m for m, r in minions.items() if not r["ok"])
        if failed:
            raise RuntimeError(f"state.apply at {spec} failed on {failed}")
        reapply_s, output = labctl.lab_cmd("apply")
        changed = sum(r["changed"] for r in converge.parse_apply(output).values())
        slowest_job_s = max(converge.job_seconds(*minions).values())
    finally:
        os.environ.pop("LAB_NODES", None)
    return {
        "nodes": nodes,
        "spec": spec,
        "minions": len(minions),
        "apply_s": round(apply_s, 1),
        "floor_s": round(floor_s, 1),
        "ratio": round(apply_s / floor_s, 2),
        "reapply_all_s": round(reapply_s, 1),
        "reapply_slowest_job_s": round(slowest_job_s, 2),
        "reapply_changes": changed,
        "master": master.figures(),
    }
