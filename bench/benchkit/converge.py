"""Converge cost: state.apply on bare containers beside apt-get + service start (the floor)."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

from . import labctl

DEFAULTS = labctl.REPO / "salt" / "webstack" / "parameters" / "defaults.yaml"
SERVICES = {
    "lb": ["haproxy", "keepalived"],
    "app": ["nginx", "supervisor"],
    "db": ["postgresql"],
}
APPLY_LINE = re.compile(
    r"^\s+(\S+)\s+(ok|FAILED)\s+states=(\d+)\s+changed=(\d+)\s+failed=(\d+)", re.M
)
#: `lab apply`'s line the moment a minion's return reaches the master (saltcmd.progress_line).
RETURNED_LINE = re.compile(r"^\s+\[\s*(\d+(?:\.\d+)?)s\]\s+(\S+)\s+(?:ok|FAILED)\s", re.M)


def role_packages():
    """The packages each role's states install (from the same map the states read)."""
    webstack = yaml.safe_load(DEFAULTS.read_text())["webstack"]
    return {
        "lb": list(webstack["lb"]["packages"]),
        "app": list(webstack["app"]["packages"]),
        "db": list(webstack["postgresql"]["packages"]),
    }


def bare_lab():
    """A lab whose node containers are fresh clones of the template (Salt answers, nothing else)."""
    labctl.lab_cmd("down")
    seconds, _ = labctl.lab_cmd("up", "--no-apply")
    return seconds


def floor(lab):
    """apt-get install of each node's role packages and a start of its services, all nodes at once
    (as Salt applies them), through the same apt proxy with its cache warm. Wall time."""
    packages = role_packages()

    def one(node):
        pkgs = sorted({p for role in node.roles for p in packages[role]})
        services = [s for role in node.roles for s in SERVICES[role]]
        started = time.monotonic()
        labctl.attach(
            node.name,
            "sh",
            "-c",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
            + " ".join(pkgs)
            + " >/dev/null && systemctl start "
            + " ".join(services),
        )
        return node.name, time.monotonic() - started

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(lab.nodes)) as pool:
        per_node = dict(pool.map(one, lab.nodes))
    return time.monotonic() - started, per_node


def parse_apply(output):
    return {
        m.group(1): {
            "ok": m.group(2) == "ok",
            "states": int(m.group(3)),
            "changed": int(m.group(4)),
        }
        for m in APPLY_LINE.finditer(output)
    }


def parse_returned(output):
    """``{minion: seconds}``: when each minion's return reached the master, from the apply's
    start (`lab apply` says it as each one comes)."""
    return {m.group(2): float(m.group(1)) for m in RETURNED_LINE.finditer(output)}


def last_return():
    """The full return of the lab's last apply (``{minion: {state_key: state}}``); ``{}`` when
    there is none or it does not parse (the breakdown then says so)."""
    try:
        return json.loads(labctl.LAST_APPLY.read_text())
    except (OSError, ValueError):
        return {}


def full_apply():
    """`lab apply` on every minion: (seconds, its summary lines, when each minion returned)."""
    seconds, output = labctl.lab_cmd("apply")
    return seconds, parse_apply(output), parse_returned(output)


#: Run in the master container with minion ids as arguments: for each, the newest job that holds
#: its return, as "<minion> <jid> <seconds>", seconds from the job's publish (its jid is the
#: master's clock then) to its return reaching the master's job cache (that file's mtime, the
#: same clock). One pass over the job cache for all of them.
JOB_SECONDS = """
import datetime, glob, os, sys
newest = {}
for job in glob.glob("/var/cache/salt/master/jobs/*/*/"):
    jid = None
    for minion in sys.argv[1:]:
        ret = os.path.join(job, minion, "return.p")
        if os.path.exists(ret):
            jid = jid or open(os.path.join(job, "jid")).read().strip()
            if minion not in newest or jid > newest[minion][0]:
                newest[minion] = (jid, os.path.getmtime(ret))
for minion, (jid, returned) in newest.items():
    published = datetime.datetime.strptime(jid[:20], "%Y%m%d%H%M%S%f").timestamp()
    print(minion, jid, round(returned - published, 3))
"""


def job_seconds(*minions):
    """``{minion: seconds}``: each minion's last job as the master saw it, publish to return (no
    CLI start)."""
    out = labctl.attach("master", "/opt/salt/bin/python3", "-c", JOB_SECONDS, *minions)
    return {fields[0]: float(fields[2]) for fields in map(str.split, out.splitlines()) if fields}


def reapply_each(lab):
    """Idempotent re-apply, one minion at a time: per minion the job's own time (publish to
    return at the master), the `lab apply` wall time (adds the salt CLI's start and the
    container attach) and the change count."""
    result = {}
    for node in lab.nodes:
        seconds, output = labctl.lab_cmd("apply", node.name)
        parsed = parse_apply(output).get(node.name, {})
        result[node.name] = {
            "seconds": job_seconds(node.name)[node.name],
            "cli_seconds": round(seconds, 2),
            "changed": parsed.get("changed"),
        }
    return result
