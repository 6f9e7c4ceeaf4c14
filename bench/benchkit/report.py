"""results.json -> the Markdown table the README shows."""

import statistics


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def _cell(s, unit="s", digits=2):
    if not s:
        return "n/a"
    if s["n"] == 1:
        return f"{s['median']:.{digits}f} {unit}".rstrip()
    spread = f"{s['min']:.{digits}f}-{s['max']:.{digits}f}"
    return f"{s['median']:.{digits}f}{' ' + unit if unit else ''} ({spread}, n={s['n']})"


def _row(*cells):
    return f"| {' | '.join(cells)} |"


def _table(*header):
    """A Markdown table's header and rule lines."""
    return [_row(*header), _row(*["---"] * len(header))]


def _count(s):
    return _cell(s, unit="", digits=0)


def _scheme(section):
    """`` (https)`` for a request stream's figures that say they went over https."""
    return f" ({section['scheme']})" if section.get("scheme") else ""


def _converge(c):
    lines = _table("Converge (all nodes in parallel)", "time", "floor: apt-get + start", "ratio")
    lines.append(
        _row(
            "state.apply from bare containers",
            _cell(c["apply"]),
            _cell(c["floor"]),
            _cell(c["ratio"], unit="x"),
        )
    )
    for minion, r in sorted(c["reapply"].items()):
        changes = ", ".join(map(str, sorted(set(r["changed"]))))
        lines.append(
            _row(
                f"idempotent re-apply, {minion} (its job: publish to return)",
                _cell(r["seconds"]),
                "-",
                f"changes: {changes}",
            )
        )
    lines += _reapply_note(c["reapply"])
    if "breakdown" in c:
        lines += ["", *_breakdown(c["breakdown"])]
    return lines


def _reapply_note(reapply):
    """The re-apply rows against their bound, and what the command line adds on top: a
    paragraph under the table (none without re-apply rows)."""
    medians = [r["seconds"]["median"] for r in reapply.values()]
    if not medians:
        return []
    cli = [r["cli_seconds"]["median"] for r in reapply.values() if "cli_seconds" in r]
    note = (
        f"Re-apply: the slowest minion's job took {max(medians):.2f} s (median; bound 1.5 s per "
        "minion), from the master publishing it to its return in the master's job cache."
    )
    if cli:
        note += (
            f" The `lab apply <minion>` command around it took {min(cli):.2f}-{max(cli):.2f} s "
            "(medians): the salt CLI's own start in the master container and the attach to it."
        )
    return ["", note]


def _state(row):
    return f"`{row['id']}` ({row['function']})"


def _breakdown(b):
    """Where the converge's time went: the slowest states, each minion's time, the critical path
    and the waits on other minions (bench/benchkit/breakdown.py)."""
    runs = f"{b['timed_runs']} of {b['runs']} converge runs"
    if not b["timed_runs"]:
        return [
            f"Where the converge's time goes: n/a, no state times in any of the {b['runs']} "
            f"converge runs' returns ({'; '.join(sorted(set(b['untimed'])))})."
        ]
    lines = [
        f"Where the converge's time goes, from Salt's own per-state `duration` ({runs}"
        + (
            f"; no state times in the others: {'; '.join(sorted(set(b['untimed'])))}"
            if b["untimed"]
            else ""
        )
        + "):",
        "",
        *_table("Ten slowest states (all minions, by median)", "minion", "sls", "time"),
    ]
    lines += [_row(_state(r), r["minion"], r["sls"], _cell(r["seconds"])) for r in b["slowest"]]
    lines += [
        "",
        *_table(
            "Per minion",
            "package installs",
            "everything else",
            "run alongside",
            "between states",
            "first state to last end",
            "returned after",
            "outside its states",
        ),
    ]
    for minion, f in b["minions"].items():
        lines.append(
            _row(
                minion,
                _cell(f["packages_s"]),
                _cell(f["other_s"]),
                _cell(f["overlap_s"]) if "overlap_s" in f else "-",
                _cell(f["between_states_s"]),
                _cell(f["span_s"]),
                _cell(f["returned_s"]),
                _cell(f["outside_states_s"]),
            )
        )
    path = b["critical_path"]
    times = ", ".join(f"{m} {n}x" for m, n in path["last"].items())
    lines += [
        "",
        *_table(f"Critical path: the minion that returned last ({times})", "time"),
        _row(
            f"wall time of the last minion ({'; '.join(path['wall_measured'])})",
            _cell(path["wall_s"]),
        ),
    ]
    lines += [_row(f"{path['minion']}: {_state(r)}", _cell(r["seconds"])) for r in path["longest"]]
    lines += [
        _row(f"{path['minion']} waits for {r['waits_for']}: {_state(r)}", _cell(r["seconds"]))
        for r in path["waits"]
    ]
    if b["waits"]:
        lines += ["", *_table("States that wait on another minion", "minion", "waits for", "time")]
        lines += [
            _row(_state(r), r["minion"], r["waits_for"], _cell(r["seconds"])) for r in b["waits"]
        ]
    lines += [
        "",
        "State times are each minion's own (`start_time`, `duration`; a state's sub-states are "
        "within it). *Package installs*: pkg.installed, pkg.latest and pkgrepo states. *Run "
        "alongside*: state time spent while another state ran too (the package install runs in "
        "its own process, `parallel: true`). *Between states*: the first state's start to the "
        "last one's end, less the time in which any state ran. "
        "*Returned after*: when the master had the minion's return, from the apply's start (`lab "
        "apply`'s progress lines); *outside its states* is that less the first-to-last span: the "
        "job reaching the minion, pillar and SLS rendering, the return reaching the master.",
    ]
    return lines


def _takeover(t):
    lines = _table(
        "VIP takeover",
        "profile",
        "takeover",
        "VRRP bound",
        "ratio",
        "failed requests",
        "longest gap",
    )
    for profile, failures in t.items():
        for failure, summary in failures.items():
            lines.append(
                _row(
                    failure,
                    profile,
                    _cell(summary["takeover_s"]),
                    f"{summary['bound_s']:.2f} s",
                    _cell(summary["ratio"], unit="x"),
                    _count(summary["failed"]),
                    _cell(summary["longest_gap_s"]),
                )
            )
    return lines


def _app_stop(a):
    return [
        *_table("App server stopped under load", "requests", "failed requests", "longest gap"),
        _row(
            f"supervisor stop on {a['victim']}, {a['rate']} req/s{_scheme(a)}",
            _count(a["requests"]),
            _count(a["failed"]),
            _cell(a["longest_gap_s"]),
        ),
    ]


def _db_failover(d):
    lines = _table(
        "PostgreSQL primary hard-killed (Patroni, 3 db nodes)",
        "new leader seen",
        "poll window",
        "bound",
        "failed writes",
        "longest gap without a write",
    )
    lines.append(
        _row(
            f"{d['rate']} writes/s through the VIP{_scheme(d)}",
            _cell(d["failover_s"]),
            _cell(d.get("poll_window_s")),
            "30 s (required)",
            _count(d["failed"]),
            _cell(d["longest_gap_s"]),
        )
    )
    if d.get("poll_window_s"):
        lines += [
            "",
            "Patroni's REST API answers only clients with a site-CA certificate: the bench reads "
            "`/cluster` with curl inside a surviving db node, with that node's own certificate "
            f"(lxc-attach from the host; one poll took {_cell(d.get('poll_s'))}). "
            "*New leader seen* is the end of the first poll that saw it; the leader changed "
            "within the *poll window* before that (from the start of the previous poll).",
        ]
    return lines


def _latency_row(label, r):
    return _row(
        label,
        _cell(r["p50_ms"], unit="ms"),
        _cell(r["p99_ms"], unit="ms"),
        _count(r["requests_per_s"]),
    )


def _hop(h):
    plain = h.get("scheme") == "http"
    vip = "through the VIP (haproxy), plain http" if plain else "through the VIP (haproxy)"
    lines = [
        *_table("LB hop (wrk, same client)", "p50", "p99", "requests/s"),
        _latency_row(vip, h["vip"]),
        _latency_row("straight to app1's nginx, plain http", h["direct"]),
    ]
    if h.get("vip_one"):
        lines += [
            _latency_row("through the VIP, one connection", h["vip_one"]),
            _latency_row("straight to app1's nginx, one connection", h["direct_one"]),
            "",
            *_table("LB hop: what it costs", "measured", "bound"),
            _row(
                "requests/s through the VIP (two app servers) / straight to one",
                _cell(h["rps_ratio"], unit="x"),
                ">= 0.85 x",
            ),
            _row(
                "p50 overhead at one connection (VIP less straight)",
                _cell(h["p50_overhead_one_ms"], unit="ms", digits=3),
                "<= 0.3 ms",
            ),
            _row(
                "haproxy CPU per request (its processes' CPU seconds / requests served)",
                _cell(h["haproxy_cpu_us_per_request"], unit="us", digits=1),
                "<= 30 us",
            ),
        ]
    if plain:
        lines += [
            "",
            "Both rows are plain http (the VIP's redirect to https off for this phase): the "
            "difference is the hop alone. What TLS adds on the VIP is in the TLS rows.",
        ]
    return lines


def median_delta(a, b, unit="ms"):
    """``a``'s median less ``b``'s (two stats() cells), signed; in % of ``b`` for ``unit='%'``."""
    if not a or not b:
        return "n/a"
    if unit == "%":
        return f"{(a['median'] / b['median'] - 1) * 100:+.0f} %" if b["median"] else "n/a"
    return f"{a['median'] - b['median']:+.2f} {unit}"


def _tls(t):
    w = t["wrk"]
    lines = _table(
        f"TLS on the VIP (wrk -t{w['threads']} -c{w['connections']} -d{w['seconds']}s, keep-alive)",
        "p50",
        "p99",
        "requests/s",
    )
    lines += [
        _latency_row("https (haproxy terminates TLS)", t["https"]),
        _latency_row("plain http (redirect off for this phase)", t["http"]),
        _row(
            "TLS cost (difference of the medians)",
            median_delta(t["https"]["p50_ms"], t["http"]["p50_ms"]),
            median_delta(t["https"]["p99_ms"], t["http"]["p99_ms"]),
            median_delta(t["https"]["requests_per_s"], t["http"]["requests_per_s"], unit="%"),
        ),
        "",
    ]
    n = t["new_connection"]
    https, http = n["https"], n["http"]
    lines += _table(
        f"TLS handshake (a new connection per request, {n['requests']} in a row per run)",
        "p50",
        "p99",
        "failed requests",
    )
    lines += [
        _row(
            f"https: connect + full handshake ({', '.join(https['tls']) or 'TLS'}) + request",
            _cell(https["p50_ms"], unit="ms"),
            _cell(https["p99_ms"], unit="ms"),
            _count(https["failed"]),
        ),
        _row(
            "plain http: connect + request",
            _cell(http["p50_ms"], unit="ms"),
            _cell(http["p99_ms"], unit="ms"),
            _count(http["failed"]),
        ),
        _row(
            "handshake cost (difference of the medians)",
            median_delta(https["p50_ms"], http["p50_ms"]),
            median_delta(https["p99_ms"], http["p99_ms"]),
            "-",
        ),
        "",
        "TLS rows: the plain-http figures were measured with the site pillar lookup "
        "`lb:haproxy:tls:redirect_http: false` applied to the lbs for this phase only; the "
        "default (308 to https) was applied again and checked afterwards. wrk does not verify "
        "certificates (it has no CA option): before each of its https runs the bench's own client "
        "verified the VIP's certificate against the site CA. The new-connection rows are Python's "
        "http.client, one request per connection, one after the other, the certificate verified, "
        "no session resumption; the client's own work is in both rows alike.",
    ]
    return lines


def _scale(rows):
    lines = _table(
        "Scale (one converge per size)",
        "nodes",
        "converge",
        "floor",
        "ratio",
        "re-apply, all at once",
        "master CPU during the converge",
        "master peak memory",
    )
    for r in rows:
        m = r["master"]
        share = m.get("cpu_share_of_one_core")
        cpu = f"{m['cpu_s']:.1f} s" + (f" ({share * 100:.0f} % of a core)" if share else "")
        lines.append(
            _row(
                r["spec"],
                str(r["nodes"]),
                f"{r['apply_s']:.1f} s",
                f"{r['floor_s']:.1f} s",
                f"{r['ratio']:.2f} x",
                f"{r['reapply_all_s']:.1f} s, slowest job {r.get('reapply_slowest_job_s', 0):.2f} s"
                f" (changes: {r['reapply_changes']})",
                cpu,
                f"{m['peak_rss_mib']:.0f} MiB",
            )
        )
    return lines


SECTIONS = (
    ("converge", _converge),
    ("scale", _scale),
    ("takeover", _takeover),
    ("app_stop", _app_stop),
    ("db_failover", _db_failover),
    ("hop", _hop),
    ("tls", _tls),
)


def _runs(results):
    """One line naming when each figure was measured, when they come from more than one run."""
    measured = results.get("measured", {})
    present = {key: measured.get(key, "an earlier run") for key, _ in SECTIONS if results.get(key)}
    if len(set(present.values())) <= 1:
        return []
    by_time = {}
    for key, when in present.items():
        by_time.setdefault(when, []).append(key)
    parts = [f"{', '.join(keys)}: {when}" for when, keys in sorted(by_time.items())]
    return [f"Figures from more than one run (partial runs, `--only`): {'; '.join(parts)}.", ""]


def markdown(results):
    m = results["machine"]
    lines = [
        f"Measured {results['finished']} on {m['cpu']} "
        f"({m['cpus']} CPUs, {m['memory_gb']} GB RAM), "
        f"kernel {m['kernel']}, lab topology `{results['topology']}`. "
        "Cells: median (min-max, n runs).",
        "",
    ]
    lines += _runs(results)
    for key, section in SECTIONS:
        if results.get(key):
            lines += [*section(results[key]), ""]
    return "\n".join(lines)
