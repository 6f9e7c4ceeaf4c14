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


def markdown(results):
    m = results["machine"]
    lines = [
        f"Measured {results['finished']} on {m['cpu']} "
        f"({m['cpus']} CPUs, {m['memory_gb']} GB RAM), "
        f"kernel {m['kernel']}, lab topology `{results['topology']}`. "
        "Cells: median (min-max, n runs).",
        "",
    ]
    c = results.get("converge")
    if c:
        lines += _table(
            "Converge (all nodes in parallel)", "time", "floor: apt-get + start", "ratio"
        )
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
                    f"idempotent re-apply, {minion}",
                    _cell(r["seconds"]),
                    "-",
                    f"changes: {changes}",
                )
            )
        lines.append("")
    t = results.get("takeover")
    if t:
        lines += _table(
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
        lines.append("")
    a = results.get("app_stop")
    if a:
        lines += _table(
            "App server stopped under load", "requests", "failed requests", "longest gap"
        )
        lines += [
            _row(
                f"supervisor stop on {a['victim']}, {a['rate']} req/s",
                _count(a["requests"]),
                _count(a["failed"]),
                _cell(a["longest_gap_s"]),
            ),
            "",
        ]
    d = results.get("db_failover")
    if d:
        lines += _table(
            "PostgreSQL primary hard-killed (Patroni, 3 db nodes)",
            "new leader",
            "bound",
            "failed writes",
            "longest gap without a write",
        )
        lines += [
            _row(
                f"{d['rate']} writes/s through the VIP",
                _cell(d["failover_s"]),
                "30 s (issue)",
                _count(d["failed"]),
                _cell(d["longest_gap_s"]),
            ),
            "",
        ]
    h = results.get("hop")
    if h:
        lines += _table("LB hop (wrk, same client)", "p50", "p99", "requests/s")
        labels = (("vip", "through the VIP (haproxy)"), ("direct", "straight to app1's nginx"))
        for where, label in labels:
            r = h[where]
            lines.append(
                _row(
                    label,
                    _cell(r["p50_ms"], unit="ms"),
                    _cell(r["p99_ms"], unit="ms"),
                    _count(r["requests_per_s"]),
                )
            )
        lines.append("")
    return "\n".join(lines)
