"""
Configuration shared by the webstack execution modules: pillar ``webstack:lookup`` over the
state tree's defaults, and this minion's topology view (``webstack_topology.node``).

Plain Python (synced by ``saltutil.sync_utils``, reached through ``__utils__``): the callers pass
their ``__pillar__`` and ``__salt__`` in.
"""

import logging

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

#: The fallbacks of every ``webstack:lookup`` key the modules read: the values of
#: salt/webstack/parameters/defaults.yaml (a unit test checks every one is read back).
DEFAULTS = {
    "pki": {
        "ca_cert": "/etc/webstack/pki/ca.crt",
        "key": "/etc/webstack/pki/node.key",
        "cert": "/etc/webstack/pki/node.crt",
        "ca": {"cert": "/etc/pki/webstack-ca/ca.crt"},
    },
    "lb": {
        "haproxy": {
            "tls": {"dir": "/etc/haproxy/tls"},
            "service": "haproxy",
            "admin_socket": "/run/haproxy/admin.sock",
            "server_state_file": "/var/lib/haproxy/server-state",
            "request_log": {"ring": "requests"},
        },
        "keepalived": {
            "service": "keepalived",
            "state_file": "/run/webstack/vrrp.json",
            "instance": "webstack",
        },
    },
    "app": {
        "socket": "/run/webstack-app/gunicorn.sock",
        "supervisor": {"service": "supervisor", "program": "webstack-app"},
        "nginx": {"service": "nginx"},
    },
    "ferretdb": {"service": "ferretdb"},
    "postgresql": {"service": "postgresql"},
    "mongodb": {"service": "mongod"},
}

#: What ``node`` answers when this minion has no topology view.
EMPTY_NODE = {"valid": False, "errors": [], "roles": []}


def pillar(data, key, default=None):
    """``key`` (``a:b:c``) of the pillar ``data``, else ``default``.

    Read from ``__pillar__`` directly: in Salt 3008 ``pillar.get`` masks secrets inside modules.
    """
    for part in key.split(":"):
        if not hasattr(data, "get"):
            return default
        data = data.get(part)
        if data is None:
            return default
    return data


def lookup(data, key):
    """``webstack:lookup:<key>`` of the pillar ``data``, else the same key in ``DEFAULTS``."""
    default = DEFAULTS
    for part in key.split(":"):
        default = default[part]
    value = pillar(data, "webstack:lookup:" + key)
    return default if value in (None, "") else value


def tls(data):
    """This node's TLS client settings for the cluster's own services (etcd, Patroni): the site
    CA to verify them and this node's certificate to be let in (``{"ca", "cert", "key"}``)."""
    return {
        "ca": lookup(data, "pki:ca_cert"),
        "cert": lookup(data, "pki:cert"),
        "key": lookup(data, "pki:key"),
    }


def node(salt, strict=False):
    """
    This minion's topology view (``webstack_topology.node`` from the loader ``salt``).

    Without that module, or when it raises a ``CommandExecutionError``: an empty view whose
    ``errors`` say why (``strict``: the error is raised instead). Any other exception is a bug
    and propagates.
    """
    func = salt.get("webstack_topology.node")
    if func is None:
        reason = "the webstack_topology module is not loaded"
        if strict:
            raise CommandExecutionError(reason)
        log.warning("webstack: %s: no topology view", reason)
        return dict(EMPTY_NODE, errors=[reason])
    try:
        return func()
    except CommandExecutionError as exc:
        if strict:
            raise
        log.warning("webstack: webstack_topology.node failed: %s", exc)
        return dict(EMPTY_NODE, errors=[str(exc)])


def self_name(view, grains):
    """The node's name in the topology, else the minion id."""
    return view.get("name") or grains.get("id")
