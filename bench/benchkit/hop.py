"""wrk runs: the lb hop (through the VIP and straight to one app's nginx, both plain http) and
the VIP over https beside plain http (benchkit.tlscost).

wrk speaks https but does not verify the server's certificate (it has no option for a CA): the
bench checks the same URL with a verifying client before each https run (tlscost.check_https).
"""

import os
import re
import shutil
import subprocess

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * UNITS[unit]


def parse_wrk(output):
    """p50/p99 latency (ms), requests/s and errors from `wrk --latency` output."""
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ", output, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "p50_ms": round(_ms(latency["50"]), 3),
        "p99_ms": round(_ms(latency["99"]), 3),
        "requests_per_s": float(rps.group(1)),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "none",
    }


def wrk(url, seconds=10, connections=16, threads=2):
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    return parse_wrk(out)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_proc_stat(text, clock_ticks=None):
    """CPU seconds (user + system) of the processes whose ``/proc/PID/stat`` lines ``text`` holds
    (fields 14 and 15, after the command name in parentheses, which may hold spaces); in
    ``clock_ticks`` per second (default: this kernel's)."""
    ticks = 0
    for line in text.splitlines():
        if ")" not in line:
            continue
        fields = line.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of the line)
    return ticks / (clock_ticks or CLOCK_TICKS)


def cpu_seconds(attach, node, process="haproxy"):
    """CPU seconds every ``process`` on ``node`` has used so far (its master and workers)."""
    out = attach(
        node, "sh", "-c", f"for p in $(pidof {process}); do cat /proc/$p/stat; done", check=False
    )
    return parse_proc_stat(out or "")
