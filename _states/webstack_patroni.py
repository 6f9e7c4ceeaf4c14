"""
States for the db role's Patroni cluster (engine ferretdb with 3 or more db nodes).

- ``webstack_patroni.member_running``: waits until this node's PostgreSQL runs under Patroni and
  the cluster has a leader (the first apply waits here for the bootstrap). Never a change.
- ``webstack_patroni.dynamic_config``: the cluster-wide settings Patroni keeps in etcd (ttl,
  synchronous_mode, PostgreSQL parameters...) hold at least the given values; only the keys that
  differ are sent (``PATCH /config``, with the REST API's credentials from pillar).

.. code-block:: yaml

    patroni member:
      webstack_patroni.member_running:
        - name: db1
        - timeout: 300

    patroni settings:
      webstack_patroni.dynamic_config:
        - name: lab-ha-db
        - config: {synchronous_mode: true, ttl: 20}
"""

import logging

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "webstack_patroni"


def __virtual__():
    if "webstack_patroni.cluster" not in __salt__:
        return (False, "webstack_patroni states need the webstack_patroni execution module")
    return __virtualname__


def member_running(name, timeout=300, interval=2):
    """
    Wait until this node's PostgreSQL runs under Patroni (as leader or replica) and the cluster
    has a leader; fail after ``timeout`` seconds. ``name`` is a label (the node's name).

    In test mode the member is asked once: running is True, anything else None (it would wait).
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    log.debug("webstack_patroni.member_running %s: test=%s", name, __opts__["test"])
    if __opts__["test"]:
        try:
            answer = __salt__["webstack_patroni.wait_member_running"](timeout=0, interval=0)
        except CommandExecutionError as exc:
            answer = {"running": False, "comment": str(exc)}
        ret["result"] = True if answer.get("running") else None
        ret["comment"] = (
            answer["comment"]
            if answer.get("running")
            else f"would wait up to {timeout}s for the member to run ({answer.get('comment')})"
        )
        return ret
    try:
        answer = __salt__["webstack_patroni.wait_member_running"](
            timeout=timeout, interval=interval
        )
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret["result"] = bool(answer.get("running"))
    ret["comment"] = answer.get("comment", "")
    return ret


def dynamic_config(name, config):
    """
    The cluster's dynamic configuration holds ``config`` (a mapping, nested for
    ``postgresql.parameters``); keys not named are left as they are. ``name`` is a label (the
    cluster's scope). Changes are sent to this node's Patroni, which writes them to etcd.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    if not isinstance(config, dict):
        ret["comment"] = "config must be a mapping of Patroni dynamic-configuration keys"
        return ret
    try:
        current = __salt__["webstack_patroni.config"]()
    except CommandExecutionError as exc:
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = f"cannot read the dynamic configuration yet: {exc}"
        else:
            ret["comment"] = str(exc)
        return ret
    diff = __salt__["webstack_patroni.config_diff"](config, current)
    log.debug("webstack_patroni.dynamic_config %s: to change: %s", name, diff)
    if not diff:
        ret["result"] = True
        ret["comment"] = "the dynamic configuration is as wanted"
        return ret
    old = _pick(current, diff)
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = "the dynamic configuration would be changed"
        ret["changes"] = {"old": old, "new": diff}
        return ret
    try:
        __salt__["webstack_patroni.patch_config"](diff)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret["result"] = True
    ret["comment"] = "the dynamic configuration was changed (Patroni applies it on every member)"
    ret["changes"] = {"old": old, "new": diff}
    return ret


def _pick(current, diff):
    """The current values of the keys in ``diff`` (same nesting)."""
    out = {}
    for key, value in diff.items():
        have = (current or {}).get(key)
        out[key] = (
            _pick(have if isinstance(have, dict) else {}, value)
            if isinstance(value, dict)
            else have
        )
    return out
