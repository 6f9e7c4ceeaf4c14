"""`make bench`: every figure of bench/results.json and bench/results.md, measured in one run."""

import argparse
import datetime
import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from . import (
    breakdown,
    converge,
    dbfailover,
    hop,
    labctl,
    machine,
    report,
    scale,
    takeover,
    tlscost,
)
from .stream import Stream

OUT = labctl.REPO / "bench"
FIGURE_NAMES = ("converge", "takeover", "app_stop", "hop", "tls", "db_failover", "scale")
# Not in .lab/: `lab down` (run before the fast profile's lab comes up) empties that.
FAST_TOPOLOGY = labctl.REPO / ".bench" / "bench-fast.yaml"


def _step(name):
    labctl.say(f"==> {name}…")
    return time.monotonic()


def _done(name, started):
    labctl.say(f"<== {name} ({time.monotonic() - started:.1f}s)")


def ensure_lab(topology):
    # Every later `lab` command and labctl.load() of this run works on this topology.
    os.environ["LAB_TOPOLOGY"] = str(topology)
    saved = labctl.config.running()
    if saved is not None and Path(saved["topology"]).resolve() != Path(topology).resolve():
        # A running lab keeps the topology it was brought up from (`lab up` refuses another).
        started = _step(f"lab down (it runs {Path(saved['topology']).name})")
        labctl.lab_cmd("down")
        _done("lab down", started)
    started = _step(f"lab up ({topology.name})")
    labctl.lab_cmd("up", "--topology", str(topology))
    _done("lab up", started)
    return labctl.load()


def bench_converge(runs):
    apply_s, floor_s, ratio, reapply, returns = [], [], [], {}, []
    for run in range(1, runs + 1):
        started = _step(f"converge run {run}/{runs}: floor on bare containers")
        converge.bare_lab()
        floor_wall, _ = converge.floor(labctl.load())
        _done(f"floor {floor_wall:.1f}s", started)
        started = _step(f"converge run {run}/{runs}: state.apply on bare containers")
        converge.bare_lab()
        seconds, minions, returned = converge.full_apply()
        failed = [m for m, r in minions.items() if not r["ok"]]
        if failed:
            raise RuntimeError(f"state.apply failed on {failed}")
        # Now, before the re-applies below replace last-apply.json with their own returns.
        returns.append((converge.last_return(), returned))
        # A rebuilt lab has a new site CA; `lab up --no-apply` + `lab apply` do not copy it out.
        labctl.fetch_ca()
        changes = sum(r["changed"] for r in minions.values())
        _done(f"apply {seconds:.1f}s ({changes} changes)", started)
        apply_s.append(seconds)
        floor_s.append(floor_wall)
        ratio.append(seconds / floor_wall)
        for minion, r in converge.reapply_each(labctl.load()).items():
            entry = reapply.setdefault(minion, {"seconds": [], "cli_seconds": [], "changed": []})
            for key in entry:
                entry[key].append(r[key])
    return {
        "apply": report.stats(apply_s),
        "floor": report.stats(floor_s),
        "ratio": report.stats(ratio),
        "reapply": {
            m: {
                "seconds": report.stats(r["seconds"]),
                "cli_seconds": report.stats(r["cli_seconds"]),
                "changed": r["changed"],
            }
            for m, r in reapply.items()
        },
        "breakdown": breakdown.across_runs(returns),
    }


def bench_takeover(lab, profile_name, runs, rate):
    profiles = yaml.safe_load(converge.DEFAULTS.read_text())["webstack"]["lb"]["keepalived"]
    profile = profiles["profiles"][profile_name]
    interval = profiles["script_interval"]
    apps = [n["name"] for n in lab.derived["app"]]
    out = {}
    for failure in takeover.FAILURES:
        runs_data = []
        for run in range(1, runs + 1):
            takeover.wait_settled(lab, apps)
            result = takeover.run_once(lab, failure, rate=rate, after=4)
            result["bound_s"] = takeover.bound(
                failure, profile, result["backup_priority"], interval
            )
            labctl.say(
                f"    {profile_name:7} {failure:15} run {run}: {result['from']} -> {result['to']} "
                f"in {result['takeover_s']}s (bound {result['bound_s']:.2f}s), "
                f"{result['failed']}/{result['requests']} failed, gap {result['longest_gap_s']}s"
            )
            runs_data.append(result)
        bounds = [r["bound_s"] for r in runs_data]
        out[failure] = {
            "runs": runs_data,
            "bound_s": max(bounds),
            "takeover_s": report.stats([r["takeover_s"] for r in runs_data]),
            "ratio": report.stats(
                [r["takeover_s"] / r["bound_s"] for r in runs_data if r["takeover_s"]]
            ),
            "failed": report.stats([r["failed"] for r in runs_data]),
            "longest_gap_s": report.stats([r["longest_gap_s"] for r in runs_data]),
        }
    takeover.wait_settled(lab, apps)
    return out


def bench_app_stop(lab, runs, rate):
    apps = [n["name"] for n in lab.derived["app"]]
    victim = apps[0]
    rows = []
    for run in range(1, runs + 1):
        takeover.wait_settled(lab, apps)
        vip = labctl.vip_url(lab)
        with Stream(vip, rate=rate, max_seconds=40, context=labctl.tls_context()) as stream:
            time.sleep(3)
            labctl.lab_cmd("service", victim, "supervisor", "stop")
            time.sleep(10)
            labctl.lab_cmd("service", victim, "supervisor", "start")
            time.sleep(5)
        rows.append(stream.summary())
        labctl.say(f"    app stop run {run}: {rows[-1]}")
    return {
        "victim": victim,
        "rate": rate,
        "scheme": urlsplit(labctl.vip_url(lab)).scheme,
        "runs": rows,
        **{k: report.stats([r[k] for r in rows]) for k in ("requests", "failed", "longest_gap_s")},
    }


def bench_db_failover(lab, runs, rate):
    rows = []
    for run in range(1, runs + 1):
        rows.append(dbfailover.run_once(lab, rate))
        labctl.say(f"    db failover run {run}: {rows[-1]}")
    return {
        "rate": rate,
        "scheme": urlsplit(labctl.vip_url(lab)).scheme,
        "runs": rows,
        **{
            k: report.stats([r.get(k) for r in rows])
            for k in ("failover_s", "poll_window_s", "poll_s", "failed", "longest_gap_s")
        },
    }


WRK = {"seconds": 10, "connections": 16, "threads": 2}
#: One connection, one request at a time: the hop's latency with nothing queued behind it.
WRK_ONE = {"seconds": 10, "connections": 1, "threads": 1}
FIGURES = ("p50_ms", "p99_ms", "requests_per_s")


def _figures(rows, keys=FIGURES):
    return {k: report.stats([r[k] for r in rows]) for k in keys} | {"runs": rows}


def _wrk_run(lab, targets, context, http_vip):
    """One wrk run of each target: an https one verified first (wrk cannot verify), plain http on
    the VIP checked to be served, not redirected (wrk counts a 308 as a success). Through the
    VIP, the CPU seconds haproxy on the VIP's holder spent over the requests wrk made."""
    out, negotiated = {}, None
    for name, url, options in targets:
        through_vip = url.startswith((http_vip, labctl.vip_url(lab)))
        if url.startswith("https:"):
            negotiated = " ".join(tlscost.check_https(url, context))
        elif url.startswith(http_vip):
            tlscost.expect_status(url, 200, timeout=10)
        holder = labctl.vip_holders(lab)[0] if through_vip else None
        before = hop.cpu_seconds(labctl.attach, holder) if holder else None
        labctl.say(f"    wrk {name}: {url} ({options['seconds']}s, {options['connections']} conn)…")
        out[name] = hop.wrk(url, **options)
        if holder and out[name]["requests"]:
            used = hop.cpu_seconds(labctl.attach, holder) - before
            out[name]["haproxy_cpu_us_per_request"] = round(used / out[name]["requests"] * 1e6, 1)
    return out, negotiated


def _fresh_run(urls, handshakes, context):
    out = {}
    for scheme, url in urls:
        labctl.say(f"    {handshakes} requests on a new connection each: {url}…")
        out[scheme] = tlscost.fresh_connections(url, handshakes, context)
    return out


def _front_results(parts, wrk_rows, fresh, negotiated, handshakes):
    results = {}
    if "hop" in parts:
        pairs = list(zip(wrk_rows["vip_http"], wrk_rows["direct"], strict=True))
        ones = list(zip(wrk_rows["vip_one"], wrk_rows["direct_one"], strict=True))
        results["hop"] = {
            "scheme": "http",
            "wrk": WRK,
            "wrk_one": WRK_ONE,
            "vip": _figures(wrk_rows["vip_http"]),
            "direct": _figures(wrk_rows["direct"]),
            "vip_one": _figures(wrk_rows["vip_one"]),
            "direct_one": _figures(wrk_rows["direct_one"]),
            # Per run, side by side: what the hop costs, in the figures the README bounds.
            "rps_ratio": report.stats(
                [v["requests_per_s"] / d["requests_per_s"] for v, d in pairs]
            ),
            "p50_overhead_one_ms": report.stats([v["p50_ms"] - d["p50_ms"] for v, d in ones]),
            "haproxy_cpu_us_per_request": report.stats(
                [v.get("haproxy_cpu_us_per_request") for v in wrk_rows["vip_http"]]
            ),
        }
    if "tls" in parts:
        new_connection = {
            s: _figures(rows, ("p50_ms", "p99_ms", "failed"))
            | {"tls": sorted({r["tls"] for r in rows if r["tls"]})}
            for s, rows in fresh.items()
        }
        results["tls"] = {
            "wrk": WRK,
            "wrk_verifies_certificates": False,
            "verified_before_each_run": True,
            "negotiated": sorted(n for n in negotiated if n),
            "https": _figures(wrk_rows["vip_https"]),
            "http": _figures(wrk_rows["vip_http"]),
            "new_connection": {
                "requests": handshakes,
                "client": "python http.client, sequential, Connection: close",
                **new_connection,
            },
        }
    return results


def bench_front(lab, runs, parts, handshakes):
    """In one plain-http window on the VIP, ``runs`` times: ``hop`` = wrk through the VIP and
    straight to app1's nginx, both plain http (the hop alone); ``tls`` = wrk through the VIP over
    https and plain http, and ``handshakes`` requests each on a new connection, both ways."""
    https_url = labctl.vip_url(lab) + "api/whoami"
    apps = [n["name"] for n in lab.derived["app"]]
    wrk_rows = {"vip_https": [], "vip_http": [], "direct": [], "vip_one": [], "direct_one": []}
    fresh = {"https": [], "http": []}
    negotiated = set()
    with tlscost.plain_http(lab) as http_vip:
        http_url = http_vip + "api/whoami"
        takeover.wait_settled(lab, apps)
        targets = [("vip_http", http_url, WRK)]
        if "tls" in parts:
            targets.append(("vip_https", https_url, WRK))
        if "hop" in parts:
            direct_url = labctl.app_url(lab) + "api/whoami"
            targets += [
                ("direct", direct_url, WRK),
                ("vip_one", http_url, WRK_ONE),
                ("direct_one", direct_url, WRK_ONE),
            ]
        for run in range(1, runs + 1):
            context = labctl.tls_context()
            step = 1 if run % 2 else -1  # every other run the other order: neither goes first
            got, seen = _wrk_run(lab, targets[::step], context, http_vip)
            negotiated.add(seen)
            for name, figures in got.items():
                wrk_rows[name].append(figures)
            line = ", ".join(f"{name} {figures}" for name, figures in got.items())
            if "tls" in parts:
                urls = (("https", https_url), ("http", http_url))[::step]
                for scheme, row in _fresh_run(urls, handshakes, context).items():
                    fresh[scheme].append(row)
                    line += f"; new connection each, {scheme}: {row}"
            labctl.say(f"    front run {run}/{runs}: {line}")
    return _front_results(parts, wrk_rows, fresh, negotiated, handshakes)


def measure(lab, topology, only, args, results):
    """Each figure in ``only``, into ``results``; converge (which rebuilds the lab) comes last."""
    front = only & {"hop", "tls"}
    if front:
        started = _step(f"{' and '.join(sorted(front))}: wrk through the VIP over https and http")
        results |= bench_front(lab, args.runs, front, args.handshakes)
        _done("LB hop and TLS cost", started)
    if "app_stop" in only:
        started = _step("app server stop under load")
        results["app_stop"] = bench_app_stop(lab, max(1, args.runs // 2), args.rate)
        _done("app server stop", started)
    if "takeover" in only:
        results["takeover"] = {}
        started = _step("VIP takeover, default profile")
        results["takeover"]["default"] = bench_takeover(lab, "default", args.runs, args.rate)
        _done("VIP takeover, default profile", started)
        started = _step("VIP takeover, fast profile (VRRPv3, 100 ms adverts)")
        raw = yaml.safe_load(topology.read_text())
        raw["vrrp"] = {"profile": "fast"}
        FAST_TOPOLOGY.parent.mkdir(parents=True, exist_ok=True)
        FAST_TOPOLOGY.write_text(yaml.safe_dump(raw, sort_keys=False))
        try:
            lab = ensure_lab(FAST_TOPOLOGY)
            results["takeover"]["fast"] = bench_takeover(lab, "fast", args.runs, args.rate)
        finally:
            lab = ensure_lab(topology)
        _done("VIP takeover, fast profile", started)
    if "db_failover" in only:
        if len(lab.derived["db_nodes"]) >= 3:
            started = _step("PostgreSQL failover (Patroni), primary hard-killed under writes")
            results["db_failover"] = bench_db_failover(lab, args.runs, rate=20)
            results["db_failover_topology"] = topology.name
            _done("PostgreSQL failover", started)
        else:
            labctl.say(
                "    (PostgreSQL failover needs >= 3 db nodes: "
                "make bench TOPOLOGY=topology/lab-ha-db.yaml BENCH_ARGS='--only db_failover')"
            )
    if "converge" in only:
        started = _step("converge")
        results["converge"] = bench_converge(args.converge_runs)
        _done("converge", started)
    if "scale" in only:
        results["scale"] = []
        for spec, nodes in scale.SIZES:
            started = _step(f"scale: converge and re-apply at {nodes} nodes ({spec})")
            results["scale"].append(scale.measure_size(spec, nodes))
            _done(f"scale at {nodes} nodes", started)
        # Back to the topology's own size for whoever uses the lab next.
        converge.bare_lab()
        labctl.lab_cmd("apply")


def write(results):
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "results.md").write_text(report.markdown(results) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--topology", default=str(labctl.REPO / "topology" / "lab.yaml"))
    parser.add_argument("--runs", type=int, default=5, help="runs per takeover/hop figure")
    parser.add_argument("--converge-runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=50, help="request stream, requests/s")
    parser.add_argument(
        "--handshakes",
        type=int,
        default=500,
        help="TLS cost: requests per run on a new connection each, over https and over http",
    )
    parser.add_argument(
        "--only",
        choices=FIGURE_NAMES,
        action="append",
        help="measure only these (repeatable); default: everything",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.converge_runs < 1 or args.handshakes < 2 or not 1 <= args.rate <= 500:
        parser.error(
            "--runs and --converge-runs must be >= 1, --handshakes >= 2, --rate within 1..500"
        )
    only = set(args.only or FIGURE_NAMES)
    topology = labctl.Path(args.topology).resolve()
    results = {}
    if args.only and (OUT / "results.json").exists():
        # A partial run updates the figures it measured and keeps the others.
        results = json.loads((OUT / "results.json").read_text())
    results |= {"machine": machine.describe(), "topology": topology.name, "started": _now()}
    lab = ensure_lab(topology)
    try:
        measure(lab, topology, only, args, results)
    finally:
        results["finished"] = _now()
        # When each figure was last measured: a partial run keeps the others' older times.
        measured = results.setdefault("measured", {})
        measured |= {name: results["finished"] for name in only if results.get(name)}
        write(results)
    labctl.say(report.markdown(results))
    labctl.say(f"wrote {OUT / 'results.json'} and {OUT / 'results.md'}")
    return 0


def _now():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
