"""
The judgement of a whole webstack cluster from every minion's ``webstack.status`` answer: who
holds the VIP (exactly one, or every owner / none), each haproxy server as every lb sees it, the
database (one node, a MongoDB replica set or a Patroni cluster), and the readable table.

``salt-run webstack.status`` gathers the answers and calls ``summarize``. Plain Python (synced by
``saltutil.sync_utils``, reached through ``__utils__``): pure, unit-tested.
"""

import logging

log = logging.getLogger(__name__)


def _answer(raw):
    """The function's return from a ``full_return`` entry (or a plain one), and an error."""
    ret = raw.get("ret") if isinstance(raw, dict) and "ret" in raw else raw
    if isinstance(ret, dict) and "roles" in ret:
        return ret, None
    return None, str(ret)[:300]


def summarize(returns, expected=()):
    """
    Judge the cluster from ``{minion: webstack.status answer}`` (``full_return`` entries or
    plain ones); ``expected`` names the minions that should have answered.

    Returns ``{healthy, retcode, problems, warnings, vip, backends, db, table}``.
    """
    log.debug("webstack: judging %d answers (%d expected)", len(returns or {}), len(expected))
    answers, problems, warnings = {}, [], []
    for minion, raw in sorted((returns or {}).items()):
        ret, error = _answer(raw)
        if ret is None:
            warnings.append(f"{minion}: webstack.status failed: {error}")
        else:
            answers[minion] = ret
    known = set(expected)
    for ret in answers.values():
        known.update(ret.get("topology", {}).get("nodes") or [])
    silent = sorted(known - set(returns or {}))
    warnings += [f"{minion}: no answer" for minion in silent]

    vip = _judge_vip(answers, problems, warnings)
    backends = _judge_backends(answers, problems)
    db = _judge_db(answers, silent, problems, warnings)
    _judge_nodes(answers, warnings)
    healthy = not problems
    report = {
        "healthy": healthy,
        "retcode": 0 if healthy else 1,
        "problems": problems,
        "warnings": warnings,
        "vip": vip,
        "backends": backends,
        "db": db,
    }
    report["table"] = _render(report, answers, silent)
    return report


def _roles(answers, role):
    return {m: r for m, r in answers.items() if role in (r.get("roles") or [])}


def _judge_vip(answers, problems, warnings):
    addresses = {r["vip"].get("vip") for r in answers.values() if r.get("vip", {}).get("vip")}
    addresses |= {r["topology"].get("vip") for r in answers.values() if r.get("topology")}
    addresses.discard(None)
    nodes = {m: r["vip"] for m, r in answers.items() if "vip" in r}
    owners = sorted(m for m, v in nodes.items() if v.get("owner"))
    address = ", ".join(sorted(addresses)) or "?"
    lbs = sorted(_roles(answers, "lb"))
    if not lbs:
        problems.append("no lb node answered: nobody can hold the VIP")
    elif not owners:
        problems.append(f"no VIP owner: none of {', '.join(lbs)} holds {address}")
    elif len(owners) > 1:
        problems.append(f"split brain: {address} is held by {', '.join(owners)}")
    elif owners[0] not in lbs:
        problems.append(f"{address} is held by {owners[0]}, which is not an lb (no haproxy there)")
    else:
        # One owner answered, but another host answers ARP for the VIP too: a holder that cannot
        # answer Salt (frozen, cut off) and still has the address.
        hidden = [
            other.get("node") or f"an unknown host ({other.get('mac')})"
            for other in nodes[owners[0]].get("others") or []
        ]
        if hidden:
            owners = sorted({owners[0], *hidden})
            problems.append(
                f"split brain: {address} is held by {', '.join(owners)} "
                f"({', '.join(hidden)} answer ARP for it, not Salt)"
            )
    for minion, view in sorted(nodes.items()):
        if view.get("error"):
            warnings.append(f"{minion}: vip_owner: {view['error']}")
        elif not view.get("consistent", True):
            warnings.append(f"{minion}: {view.get('comment')}")
    return {
        "address": address,
        "owners": owners,
        "nodes": {
            m: {
                k: v.get(k)
                for k in ("owner", "vrrp_state", "priority", "interface", "consistent", "others")
            }
            for m, v in nodes.items()
        },
    }


def _judge_backends(answers, problems):
    seen = {}
    for minion, ret in sorted(_roles(answers, "lb").items()):
        lb = (ret.get("backends") or {}).get("lb") or {}
        if lb.get("error"):
            problems.append(f"{minion}: haproxy: {lb['error']}")
            continue
        seen[minion] = {}
        for backend, data in sorted((lb.get("backends") or {}).items()):
            servers = data.get("servers") or {}
            seen[minion][backend] = {
                name: {
                    k: s.get(k)
                    for k in ("status", "check_status", "admin_state", "weight", "sessions")
                }
                for name, s in sorted(servers.items())
            }
            if not data.get("servers_serving"):
                listed = ", ".join(f"{n} {s.get('status')}" for n, s in sorted(servers.items()))
                problems.append(
                    f"all backends down on {minion}: backend {backend} has no server in service"
                    + (f" ({listed})" if listed else " (no servers)")
                )
    return seen


def _judge_db(answers, silent, problems, warnings=None):
    engines = {r["topology"].get("db_engine") for r in answers.values() if r.get("topology")}
    engines.discard(None)
    db_names = {n for r in answers.values() for n in r.get("topology", {}).get("db_nodes") or []}
    silent = [m for m in silent if m in db_names] if db_names else list(silent)
    engine = ", ".join(sorted(engines)) or None
    nodes, views = {}, {}
    for minion, ret in sorted(_roles(answers, "db").items()):
        db = (ret.get("backends") or {}).get("db") or {}
        nodes[minion] = {
            "healthy": bool(db.get("healthy")),
            "summary": db_summary(db, minion),
        }
        if db.get("cluster") and not db.get("error"):
            views[minion] = db
    if views:
        return _judge_cluster(engine, nodes, views, problems, warnings)
    healthy = any(n["healthy"] for n in nodes.values())
    if not nodes:
        problems.append(
            "DB down: no db node answered" + (f" (silent: {', '.join(silent)})" if silent else "")
        )
    elif not healthy:
        detail = "; ".join(f"{m}: {n['summary']}" for m, n in nodes.items())
        problems.append(f"DB down: {detail}")
    return {"engine": engine, "healthy": healthy, "nodes": nodes}


def _judge_cluster(engine, nodes, views, problems, warnings):
    """
    A Patroni cluster (engine ferretdb, 3+ db nodes): every db node answers with the cluster's
    view (``webstack_patroni.cluster``). Unhealthy without a leader or a synchronous standby, or
    when db nodes see different leaders; degraded (a warning) when a member is missing, not
    running or lagging.
    """
    # The view of a node whose own Patroni answered (it read the cluster itself), else any.
    view = next((v for m, v in views.items() if v.get("source") == m), next(iter(views.values())))
    leaders = sorted({v.get("leader") for v in views.values()} - {None})
    problems += [f"DB: {p}" for p in view.get("problems") or []]
    if len(leaders) > 1:
        seen = ", ".join(f"{m}: {v.get('leader')}" for m, v in sorted(views.items()))
        problems.append(f"DB: db nodes see different leaders ({seen})")
    if warnings is not None:
        warnings += [f"DB degraded: {w}" for w in view.get("warnings") or []]
    return {
        "engine": engine,
        "healthy": bool(view.get("healthy")) and len(leaders) <= 1,
        "degraded": bool(view.get("degraded")),
        "cluster": {
            k: view.get(k)
            for k in ("leader", "sync_standbys", "replicas", "members", "synchronous_mode")
        },
        "nodes": nodes,
    }


def lag_text(lag):
    if lag is None:
        return "lag unknown"
    for unit in ("B", "kB", "MB"):
        if lag < 1024 or unit == "MB":
            return f"lag {lag:.0f} {unit}" if unit == "B" else f"lag {lag:.1f} {unit}"
        lag /= 1024
    return f"lag {lag}"


def _cluster_summary(db, minion=None):
    """One line: the leader, then each replica (sync or async, state, lag); this node marked."""
    mark = {minion: "*"} if minion else {}
    leader = db.get("leader")
    parts = [f"leader {leader}{mark.get(leader, '')}" if leader else "NO LEADER"]
    for replica in db.get("replicas") or []:
        kind = "sync" if replica.get("sync") else "async"
        parts.append(
            f"{replica['name']}{mark.get(replica['name'], '')} {kind} {replica.get('state')}"
            f" {lag_text(replica.get('lag'))}"
        )
    if db.get("problems"):
        parts.append("UNHEALTHY: " + "; ".join(db["problems"]))
    elif db.get("degraded"):
        parts.append("degraded")
    return "patroni: " + ", ".join(parts)


def db_summary(db, minion=None):
    if db.get("error"):
        return db["error"]
    if db.get("cluster"):
        return _cluster_summary(db, minion)
    if "postgresql" in db or "accepting" in db:
        pg = db.get("postgresql", db)
        state = "accepting connections" if pg.get("accepting") else "not accepting connections"
        return f"postgresql {pg.get('role') or 'role unknown'}, {state}"
    replset = db.get("replica_set") or {}
    if replset:
        if not replset.get("initiated"):
            return "mongod up, replica set not initiated"
        members = ", ".join(f"{m['name']} {m['state']}" for m in replset.get("members", []))
        return f"replica set {replset.get('name')}: {members}"
    return "unknown"


def _judge_nodes(answers, warnings):
    for minion, ret in sorted(answers.items()):
        for name, service in sorted((ret.get("services") or {}).items()):
            if service.get("running") is False:
                warnings.append(f"{minion}: service {name} is not running")
        app = (ret.get("backends") or {}).get("app")
        if app and not app.get("healthy"):
            warnings.append(f"{minion}: app unhealthy ({_app_summary(app)})")
        for kind, cert in sorted(((ret.get("backends") or {}).get("certificates") or {}).items()):
            if cert.get("error"):
                warnings.append(f"{minion}: {kind} certificate: {cert['error']}")
            elif cert.get("expires_soon"):
                warnings.append(
                    f"{minion}: {kind} certificate {cert.get('path')} expires in "
                    f"{cert.get('days_left')} days ({cert.get('not_after')})"
                )
        topology = ret.get("topology") or {}
        if topology and not topology.get("valid", True):
            warnings.append(f"{minion}: invalid topology: {'; '.join(topology.get('errors', []))}")


def _app_summary(app):
    if app.get("error"):
        return app["error"]
    parts = []
    for where in ("nginx", "gunicorn"):
        for path in ("healthz", "readyz"):
            answer = (app.get(where) or {}).get(path) or {}
            parts.append(f"{where} /{path} {answer.get('status') or answer.get('error', '?')}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------------
# Table
# --------------------------------------------------------------------------------------------------


def _table(headers, rows):
    cells = [list(headers)] + [["-" if c in (None, "") else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def _health_cell(backends):
    cells = []
    lb = backends.get("lb")
    if lb is not None:
        cells.append("haproxy " + ("ERROR" if lb.get("error") else "ok"))
    app = backends.get("app")
    if app is not None:
        if app.get("error"):
            cells.append("app ERROR")
        else:
            nginx = app.get("nginx") or {}
            cells += [
                f"/{path} {(nginx.get(path) or {}).get('status') or 'no answer'}"
                for path in ("healthz", "readyz")
            ]
    db = backends.get("db")
    if db is not None:
        cells.append("db " + ("up" if db.get("healthy") else "DOWN"))
    return " ".join(cells)


def _render(report, answers, silent=()):
    """The report as aligned text tables (the ``table`` key of ``status``)."""
    vip = report["vip"]
    if len(vip["owners"]) == 1:
        head = f"VIP {vip['address']}: held by {vip['owners'][0]}"
    elif vip["owners"]:
        head = f"VIP {vip['address']}: SPLIT BRAIN, held by {', '.join(vip['owners'])}"
    else:
        head = f"VIP {vip['address']}: NO OWNER"
    lines = [head, ""]
    rows = []
    for minion, ret in sorted(answers.items()):
        view = ret.get("vip") or {}
        services = " ".join(
            f"{name}:{'up' if s.get('running') else 'DOWN' if s.get('running') is False else '?'}"
            for name, s in sorted((ret.get("services") or {}).items())
        )
        rows.append(
            [
                minion,
                ",".join(ret.get("roles") or []),
                "OWNER" if view.get("owner") else "",
                view.get("vrrp_state") if "lb" in (ret.get("roles") or []) else "",
                view.get("priority") if "lb" in (ret.get("roles") or []) else "",
                _health_cell(ret.get("backends") or {}),
                services,
            ]
        )
    rows += [[minion, "?", "", "", "", "(no answer)", ""] for minion in silent]
    lines += _table(["NODE", "ROLES", "VIP", "VRRP", "PRIO", "HEALTH", "SERVICES"], rows)
    rows = [
        [
            lb,
            f"{backend}/{name}",
            s["status"],
            s["check_status"],
            s["admin_state"],
            s["weight"],
            s["sessions"],
        ]
        for lb, backends in sorted(report["backends"].items())
        for backend, servers in sorted(backends.items())
        for name, s in servers.items()
    ]
    if rows:
        lines += [
            "",
            *_table(["LB", "SERVER", "STATUS", "CHECK", "ADMIN", "WEIGHT", "SESSIONS"], rows),
        ]
    db = report["db"]
    lines += ["", f"DB ({db['engine'] or 'engine unknown'}): {'up' if db['healthy'] else 'DOWN'}"]
    lines += [f"  {minion}: {node['summary']}" for minion, node in sorted(db["nodes"].items())]
    lines += ["", "HEALTHY" if report["healthy"] else "UNHEALTHY"]
    lines += [f"  problem: {p}" for p in report["problems"]]
    lines += [f"  warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)
