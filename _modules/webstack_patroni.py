"""
The PostgreSQL cluster of the db role under Patroni (engine ferretdb with 3 or more db nodes), as
its members' REST APIs report it.

- ``cluster``: leader, replicas (state, replication lag, synchronous or not), and a verdict:
  ``healthy`` is false when there is no leader or, in synchronous mode, no synchronous standby
  (an acknowledged write would then live on one node only); ``degraded`` when a member of the
  topology is missing, not running or lagging. ``webstack.backend_health`` on a db node and
  ``salt-run webstack.status`` report it.
- ``is_leader``: whether this node's Patroni holds the leader lock and runs the primary (the
  ``onlyif`` of the states that must run once per cluster, on the primary).
- ``member``, ``config`` and ``patch_config``: one member's status, the cluster's dynamic
  configuration (kept in etcd) and a change to it (the ``webstack_patroni`` states use them).

- ``postgresql_health``: a single PostgreSQL (engine ferretdb with one db node) through
  ``pg_isready`` and ``psql`` as postgres (peer authentication).

Only the standard library is used (``_utils/webstack_http.py``): reading Patroni's REST API needs no
credentials; changing the dynamic configuration uses pillar
``webstack:secrets:patroni_rest_password``.
Members and their API addresses come from the topology (``webstack_topology.node``:
``db_cluster.members``), the user from pillar ``webstack:lookup:patroni:users:rest``.
"""

import json
import logging
import time

import salt.utils.path
import salt.utils.platform
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "webstack_patroni"

#: Patroni 3.0's member states in which PostgreSQL runs and replicates (3.0.3+ says "streaming"
#: for a replica that receives WAL from the primary).
RUNNING_STATES = ("running", "streaming")
#: Roles of the member holding the leader lock (/cluster says "leader"; older versions "master").
LEADER_ROLES = ("leader", "standby_leader", "master", "primary")
SYNC_ROLE = "sync_standby"
#: A replica further behind than this (bytes of WAL) makes the cluster degraded: Patroni's own
#: default maximum_lag_on_failover (such a replica would not be promoted).
DEFAULT_MAX_LAG = 1048576
DEFAULT_REST_USER = "patroni"
_TIMEOUT = 2.0


def __virtual__():
    if not salt.utils.platform.is_linux():
        return (False, "webstack_patroni: Linux only (Patroni and the db nodes run Debian)")
    if "webstack_http.request_json" not in __utils__:
        return (False, "webstack_patroni: the webstack_http utils module is not synced")
    return __virtualname__


# --------------------------------------------------------------------------------------------------
# Configuration: topology and pillar
# --------------------------------------------------------------------------------------------------


def _pillar(key, default=None):
    return __utils__["webstack_config.pillar"](__pillar__, key, default)


def _node():
    return __utils__["webstack_config.node"](__salt__, strict=True)


def _members(node=None):
    """The cluster's members from the topology, this node first: ``[{name, patroni_api...}]``."""
    node = node if node is not None else _node()
    cluster = node.get("db_cluster") or {}
    members = list(cluster.get("members") or [])
    if not members:
        reason = "; ".join(node.get("errors") or []) or (
            "the topology has no Patroni cluster (engine ferretdb with 3+ db nodes)"
        )
        raise CommandExecutionError(f"webstack_patroni: {reason}")
    name = node.get("name")
    return sorted(members, key=lambda m: m["name"] != name)


def _member(name=None, node=None):
    members = _members(node)
    if name is None:
        return members[0]
    for member in members:
        if member["name"] == name or member["address"] == name:
            return member
    known = ", ".join(m["name"] for m in members)
    raise CommandExecutionError(f"webstack_patroni: no member {name!r} (members: {known})")


# --------------------------------------------------------------------------------------------------
# HTTP (stdlib)
# --------------------------------------------------------------------------------------------------


def _split(api):
    host, _, port = api.rpartition(":")
    return host, int(port)


def _request(api, path, *, method="GET", body=None, auth=None, timeout=_TIMEOUT):
    """``(status, parsed JSON or text)`` of one request to a Patroni REST API at ``host:port``;
    a connection failure raises with its cause (in the message and chained)."""
    host, port = _split(api)
    try:
        return __utils__["webstack_http.request_json"](
            host,
            port,
            path,
            method=method,
            body=body,
            auth=auth,
            timeout=timeout,
            # Patroni's REST API is https only and requires a client certificate: this node's.
            tls=__utils__["webstack_config.tls"](__pillar__),
        )
    except CommandExecutionError as exc:
        cause = exc.__cause__ or exc
        raise CommandExecutionError(f"Patroni REST API {api}{path}: {cause}") from cause


# --------------------------------------------------------------------------------------------------
# Parsing (pure: unit-tested on answers captured from a real Patroni 3.0.2)
# --------------------------------------------------------------------------------------------------


def _lag(value):
    """Patroni's lag: bytes (int), or "unknown" when the member reported no WAL position."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _fmt_bytes(value):
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def _replica(member):
    return {
        "name": member["name"],
        "role": member.get("role"),
        "state": member.get("state"),
        "lag": _lag(member.get("lag")),
        "sync": member.get("role") == SYNC_ROLE,
        "host": member.get("host"),
        "timeline": member.get("timeline"),
    }


def _leader_problems(leader, unreachable):
    if leader is None:
        return ["no leader: no member holds the leader lock (writes are refused)"]
    if leader["name"] in unreachable:
        return [
            f"leader {leader['name']} does not answer ({unreachable[leader['name']]}): "
            "a standby takes over once its lock expires"
        ]
    if leader.get("state") not in RUNNING_STATES:
        return [f"leader {leader['name']} is {leader.get('state') or 'in an unknown state'}"]
    return []


def _replica_warning(replica, unreachable, max_lag):
    """Why ``replica`` makes the cluster degraded, or None."""
    if replica["name"] in unreachable:
        return f"{replica['name']}: does not answer ({unreachable[replica['name']]})"
    if replica["state"] not in RUNNING_STATES:
        return f"{replica['name']}: {replica['state'] or 'state unknown'}"
    if replica["lag"] is None:
        return f"{replica['name']}: replication lag unknown"
    if replica["lag"] > max_lag:
        return f"{replica['name']}: {_fmt_bytes(replica['lag'])} behind the leader"
    return None


def parse_cluster(data, config=None, expected=(), max_lag=DEFAULT_MAX_LAG, unreachable=None):
    """
    Judge a Patroni ``GET /cluster`` answer (``data``), with the dynamic configuration
    (``GET /config``, for ``synchronous_mode``), the member names the topology expects and
    ``unreachable``: ``{name: reason}`` of listed members whose own REST API did not answer (a
    member killed outright stays listed, "running", until its key expires after ttl seconds).

    Returns ``{leader, replicas: [{name, role, state, lag, sync, host, timeline}], members,
    synchronous_mode, paused, healthy, degraded, problems, warnings}``:

    - ``problems`` (``healthy`` false): no leader; a leader whose PostgreSQL is not running or
      that does not answer; in synchronous mode, no synchronous standby that runs and answers;
    - ``warnings`` (``degraded`` true): a topology member missing from the cluster, a replica not
      running or not answering, a lag unknown or above ``max_lag`` bytes, maintenance mode (no
      automatic failover).

    This function is pure (no I/O); ``cluster`` feeds it.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_patroni.parse_cluster '{"members": []}'
    """
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict) or not isinstance(data.get("members"), list):
        raise CommandExecutionError(f"not a Patroni /cluster answer: {str(data)[:200]}")
    config = config if isinstance(config, dict) else {}
    unreachable = unreachable or {}
    members = [m for m in data["members"] if isinstance(m, dict) and m.get("name")]
    leaders = [m for m in members if m.get("role") in LEADER_ROLES]
    leader = leaders[0] if leaders else None
    sync_mode = bool(config.get("synchronous_mode")) if config else None
    replicas = [_replica(m) for m in members if m is not leader]
    problems = _leader_problems(leader, unreachable)
    syncs = [
        r
        for r in replicas
        if r["sync"] and r["state"] in RUNNING_STATES and r["name"] not in unreachable
    ]
    if sync_mode and leader is not None and not syncs:
        problems.append(
            f"no synchronous standby: a write acknowledged now would live on {leader['name']} only"
        )
    names = {m["name"] for m in members}
    warnings = [
        f"{name}: not in the cluster (Patroni down or unreachable)"
        for name in expected or ()
        if name not in names
    ]
    warnings += [w for w in (_replica_warning(r, unreachable, max_lag) for r in replicas) if w]
    for name in sorted(names - set(expected or names)):
        warnings.append(f"{name}: a member the topology does not name")
    if data.get("pause"):
        warnings.append("maintenance mode (paused): no automatic failover")
    return {
        "leader": leader["name"] if leader else None,
        "leader_state": leader.get("state") if leader else None,
        "timeline": leader.get("timeline") if leader else None,
        "replicas": replicas,
        "members": sorted(names),
        "synchronous_mode": sync_mode,
        "sync_standbys": [r["name"] for r in syncs],
        "paused": bool(data.get("pause")),
        "healthy": not problems,
        "degraded": bool(problems or warnings),
        "problems": problems,
        "warnings": warnings,
    }


# --------------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------------


def member(name=None, timeout=_TIMEOUT):
    """
    One member's own status (``GET /patroni``): role, state, timeline, WAL positions... of this
    node by default, or of the member ``name``.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_patroni.member
        salt-call webstack_patroni.member db2
    """
    target = _member(name)
    _status, data = _request(target["patroni_api"], "/patroni", timeout=timeout)
    if not isinstance(data, dict):
        raise CommandExecutionError(f"{target['name']}: unexpected /patroni answer: {data!r}")
    return data


def config(name=None, timeout=_TIMEOUT):
    """
    The cluster's dynamic configuration (``GET /config``: ttl, loop_wait, synchronous_mode,
    PostgreSQL parameters...), as kept in etcd, asked of this node (or of the member ``name``).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_patroni.config
    """
    target = _member(name)
    status, data = _request(target["patroni_api"], "/config", timeout=timeout)
    if status != 200 or not isinstance(data, dict):
        raise CommandExecutionError(f"{target['name']}: GET /config answered {status}: {data!r}")
    return data


def patch_config(patch, name=None, timeout=5):
    """
    Change the cluster's dynamic configuration (``PATCH /config``; a key set to ``None`` is
    removed), with the REST API's credentials from pillar. Returns the new configuration.

    patch
        The keys to change, e.g. ``{"synchronous_mode": true}``.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_patroni.patch_config '{"synchronous_mode": true}'
    """
    if isinstance(patch, str):
        patch = json.loads(patch)
    if not isinstance(patch, dict):
        raise CommandExecutionError("patch_config: patch must be a mapping")
    password = _pillar("webstack:secrets:patroni_rest_password")
    if not password:
        raise CommandExecutionError("webstack:secrets:patroni_rest_password is not in pillar")
    user = _pillar("webstack:lookup:patroni:users:rest") or DEFAULT_REST_USER
    target = _member(name)
    status, data = _request(
        target["patroni_api"],
        "/config",
        method="PATCH",
        body=patch,
        auth=(user, password),
        timeout=timeout,
    )
    if status != 200 or not isinstance(data, dict):
        raise CommandExecutionError(f"{target['name']}: PATCH /config answered {status}: {data!r}")
    return data


def is_leader(timeout=_TIMEOUT):
    """
    True when this node's Patroni holds the leader lock and runs the primary (``GET /primary``
    answers 200); False otherwise, Patroni unreachable included.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_patroni.is_leader
    """
    try:
        target = _member()
        status, _data = _request(target["patroni_api"], "/primary", timeout=timeout)
    except CommandExecutionError as exc:
        log.debug("webstack_patroni.is_leader: %s", exc)
        return False
    return status == 200


def cluster(name=None, timeout=_TIMEOUT, max_lag=DEFAULT_MAX_LAG):
    """
    The cluster as Patroni sees it: ``GET /cluster`` and ``GET /config`` of the first member that
    answers (this node first, then the others in topology order), judged by ``parse_cluster``:
    ``{leader, replicas [{name, state, lag, sync}], healthy, degraded, problems, warnings,
    synchronous_mode, source}``. When no member answers: ``healthy`` false with the reason.

    name
        Ask this member first instead of this node.
    max_lag
        Bytes of replication lag above which a replica makes the cluster degraded.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_patroni.cluster
    """
    node = _node()
    members = _members(node)
    if name is not None:
        first = _member(name, node)
        members = [first] + [m for m in members if m is not first]
    expected = [m["name"] for m in sorted(members, key=lambda m: m["name"])]
    tried = []
    for target in members:
        try:
            status, data = _request(target["patroni_api"], "/cluster", timeout=timeout)
        except CommandExecutionError as exc:
            tried.append(str(exc))
            continue
        if status != 200 or not isinstance(data, dict):
            tried.append(f"{target['name']}: GET /cluster answered {status}")
            continue
        conf, problem = _cluster_config(target, timeout)
        listed = {m.get("name") for m in data.get("members") or [] if isinstance(m, dict)}
        unreachable = _unreachable(members, listed - {target["name"]}, timeout)
        view = parse_cluster(data, conf, expected, max_lag, unreachable)
        if problem:
            view["warnings"].append(problem)
            view["degraded"] = True
        view["source"] = target["name"]
        log.debug("webstack_patroni: cluster from %s: %s", target["name"], view["problems"])
        return view
    problem = "no Patroni REST API answered: " + "; ".join(tried)
    return {
        "leader": None,
        "replicas": [],
        "members": [],
        "synchronous_mode": None,
        "sync_standbys": [],
        "healthy": False,
        "degraded": True,
        "problems": [problem],
        "warnings": [],
        "source": None,
    }


def _cluster_config(target, timeout):
    """(the dynamic configuration, None) or (None, why it could not be read: the synchronous
    mode then goes unchecked, which the caller reports)."""
    try:
        status, conf = _request(target["patroni_api"], "/config", timeout=timeout)
    except CommandExecutionError as exc:
        problem = str(exc)
    else:
        if status == 200 and isinstance(conf, dict):
            return conf, None
        problem = f"{target['name']}: GET /config answered {status}: {str(conf)[:120]}"
    log.warning("webstack_patroni: %s", problem)
    return None, f"synchronous mode not checked: {problem}"


def _unreachable(members, names, timeout):
    """``{name: reason}`` of the members named whose own REST API does not answer."""
    out = {}
    for entry in members:
        if entry["name"] not in names:
            continue
        try:
            _request(entry["patroni_api"], "/patroni", timeout=timeout)
        except CommandExecutionError as exc:
            out[entry["name"]] = str(exc).split(": ", 1)[-1]
    return out


def wait_member_running(timeout=300, interval=2):
    """
    Wait until this node's PostgreSQL runs under Patroni (``GET /patroni``: state running, as
    leader or replica) and the cluster has a leader. Returns ``{running, seconds, role, state,
    leader, comment}``; ``running`` is false when ``timeout`` seconds passed first.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_patroni.wait_member_running timeout=120
    """
    started = time.monotonic()
    last = "no answer yet"
    for _waited in __utils__["webstack_poll.until"](timeout, interval):
        try:
            status = member(timeout=_TIMEOUT)
            view = cluster(timeout=_TIMEOUT)
        except CommandExecutionError as exc:
            last = str(exc)
            continue
        state, role = status.get("state"), status.get("role")
        if state in RUNNING_STATES and view.get("leader"):
            return {
                "running": True,
                "seconds": round(time.monotonic() - started, 1),
                "role": role,
                "state": state,
                "leader": view["leader"],
                "comment": f"{status.get('patroni', {}).get('scope', '')} member is {state}"
                f" ({role}); leader {view['leader']}",
            }
        last = f"member {state or '?'} ({role or '?'}), leader {view.get('leader') or 'none'}"
        log.debug("webstack_patroni: waiting: %s", last)
    return {
        "running": False,
        "seconds": round(time.monotonic() - started, 1),
        "comment": f"not running after {timeout}s: {last}",
    }


def _same(want, have):
    """Dynamic-config values compare as text: Patroni keeps what it was given ("on", 5, true)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_same(v, have.get(k)) for k, v in want.items())
    if want is None or have is None:
        return want is have
    return str(want).strip().lower() == str(have).strip().lower()


def config_diff(want, have):
    """
    The part of ``want`` (a dynamic-configuration mapping) that ``have`` does not match:
    ``{}`` when the cluster is configured as wanted. Pure.

    CLI Example:

    .. code-block:: bash

        salt-call webstack_patroni.config_diff '{"ttl": 20}' '{"ttl": 30}'
    """
    diff = {}
    for key, value in (want or {}).items():
        current = (have or {}).get(key)
        if isinstance(value, dict):
            sub = config_diff(value, current if isinstance(current, dict) else {})
            if sub:
                diff[key] = sub
        elif not _same(value, current):
            diff[key] = value
    return diff


def _psql_role(port):
    """``primary``/``standby`` from ``pg_is_in_recovery()`` as postgres, and an error."""
    query = __salt__["cmd.run_all"](
        ["psql", "-XAtq", "-p", str(port), "-d", "postgres", "-c", "select pg_is_in_recovery()"],
        runas="postgres",
        python_shell=False,
        ignore_retcode=True,
    )
    if query["retcode"] != 0:
        return None, f"psql as postgres: {query['stderr'].strip()}"
    return ("standby" if query["stdout"].strip() == "t" else "primary"), None


def postgresql_health(port=None):
    """
    A single PostgreSQL (engine ferretdb with one db node): ``{port, accepting, pg_isready,
    role, healthy}`` from ``pg_isready`` and ``psql`` as postgres (``role``: primary or
    standby); healthy when it accepts connections and its role is known.

    port
        Default: the topology's ``ports.postgresql`` (5432).

    CLI Example:

    .. code-block:: bash

        salt-call webstack_patroni.postgresql_health
    """
    if port is None:
        port = (__utils__["webstack_config.node"](__salt__).get("ports") or {}).get(
            "postgresql", 5432
        )
    if not salt.utils.path.which("pg_isready"):
        return {"healthy": False, "error": "pg_isready not found (postgresql-client is missing)"}
    ready = __salt__["cmd.run_all"](
        ["pg_isready", "-p", str(port)], python_shell=False, ignore_retcode=True
    )
    ret = {
        "port": port,
        "accepting": ready["retcode"] == 0,
        "pg_isready": (ready["stdout"] or ready["stderr"]).strip(),
        "role": None,
    }
    if ret["accepting"]:
        ret["role"], error = _psql_role(port)
        if error:
            ret["error"] = error
    ret["healthy"] = ret["accepting"] and ret["role"] is not None
    log.debug("webstack_patroni: postgresql on %s: %s", port, ret)
    return ret
