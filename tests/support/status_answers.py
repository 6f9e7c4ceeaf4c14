"""``webstack.status`` answers of a whole cluster (lb1, lb2, app1, app2, db1), as the runner
gathers them with ``full_return``: for the judgement's and the runner's tests."""

VIP = "10.77.0.100"
NODES = ["lb1", "lb2", "app1", "app2", "db1"]


def server(status="UP", admin="ready"):
    up = status.startswith("UP") or status == "DRAIN"
    return {
        "status": status,
        "admin_state": admin,
        "op_state": "running" if up else "stopped",
        "up": up,
        "serving": up and admin == "ready",
        "check_status": "L7OK" if up else "L4CON",
        "weight": 1,
        "sessions": 0,
    }


def full_return(name, roles, backends, services, vip, nodes=NODES, db_nodes=("db1",)):
    """``name``'s ``webstack.status`` as ``full_return`` gives it, on a ferretdb topology."""
    return {
        "ret": {
            "node": name,
            "roles": roles,
            "topology": {
                "valid": True,
                "nodes": nodes,
                "db_nodes": list(db_nodes),
                "db_engine": "ferretdb",
                "vip": VIP,
            },
            "backends": backends,
            "services": services,
            "vip": vip,
        },
        "retcode": 0,
    }


def answer(name, roles, owner=False, vrrp="BACKUP", servers=None, db=None, app_ok=True):
    backends = {}
    if "lb" in roles:
        servers = servers if servers is not None else {"app1": server(), "app2": server()}
        backends["lb"] = {
            "frontends": {"www": {"status": "OPEN", "sessions": 0}},
            "backends": {
                "app": {
                    "status": "UP",
                    "servers": servers,
                    "servers_serving": sum(s["serving"] for s in servers.values()),
                }
            },
        }
    if "app" in roles:
        ok = {"status": 200 if app_ok else 503, "ok": app_ok}
        backends["app"] = {
            "nginx": {"healthz": ok, "readyz": ok},
            "gunicorn": {"healthz": ok, "readyz": ok},
            "healthy": app_ok,
        }
    if "db" in roles:
        backends["db"] = db or {
            "engine": "ferretdb",
            "accepting": True,
            "role": "primary",
            "healthy": True,
            "pg_isready": "accepting connections",
        }
    services = {"haproxy": {"running": True, "enabled": True}} if "lb" in roles else {}
    vip = {
        "vip": VIP,
        "owner": owner,
        "vrrp_state": vrrp if "lb" in roles else "UNKNOWN",
        "priority": {"lb1": 200, "lb2": 190}.get(name),
        "consistent": True,
    }
    return full_return(name, roles, backends, services, vip)


def cluster(**changes):
    returns = {
        "lb1": answer("lb1", ["lb"], owner=True, vrrp="MASTER"),
        "lb2": answer("lb2", ["lb"]),
        "app1": answer("app1", ["app"]),
        "app2": answer("app2", ["app"]),
        "db1": answer("db1", ["db"]),
    }
    returns.update(changes)
    return {k: v for k, v in returns.items() if v is not None}
