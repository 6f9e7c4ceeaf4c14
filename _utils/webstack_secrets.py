"""
Which secrets each node holds: a role gets only the secrets its own states and modules write or use.

Pure standard library, no Salt, like ``webstack_topology_rules.py``: read by the pillar (which hands
a minion only its own share of ``webstack:secrets``), by the validation (which requires exactly that
share on a minion, the whole set from the site's secrets file) and by the tests.
"""

#: Secrets a role uses whatever the engine: the lbs' stats user; the app's session key and its
#: database password (FerretDB hands the app's own credentials on to PostgreSQL; MongoDB checks
#: them); a db node creates the app's role/user with that password.
ROLE_SECRETS = {
    "lb": ("stats_password",),
    "app": ("app_secret_key", "db_password"),
    "db": ("db_password",),
}

#: Engine mongodb, db role: the replica-set keyFile and the admin user the states log in as.
MONGODB_SECRETS = ("mongodb_keyfile", "mongodb_admin_password")

#: Engine ferretdb with a Patroni cluster, db role: PostgreSQL's superuser, replication and
#: pg_rewind roles (Patroni creates them at bootstrap) and the user of Patroni's REST API (its
#: unsafe endpoints: restart, reload, switchover... need it; reading stays open).
CLUSTER_SECRETS = (
    "postgres_superuser_password",
    "postgres_replication_password",
    "postgres_rewind_password",
    "patroni_rest_password",
)

#: Secrets a role may hold but need not: a certificate for the VIP brought by the site (PEM, key
#: and chain); without them each lb is issued one by the site CA.
OPTIONAL_SECRETS = {
    "lb": ("vip_certificate", "vip_private_key"),
}

#: Every key ``webstack:secrets`` may have.
ALL_SECRETS = tuple(
    dict.fromkeys(
        [key for keys in ROLE_SECRETS.values() for key in keys]
        + list(MONGODB_SECRETS)
        + list(CLUSTER_SECRETS)
        + [key for keys in OPTIONAL_SECRETS.values() for key in keys]
    )
)


def required(roles, engine, cluster):
    """The secret keys a node with ``roles`` must have, in a stable order.

    ``engine``: the topology's db engine; ``cluster``: whether the db role is a Patroni cluster
    (engine ferretdb with three or more db nodes).
    """
    keys = []
    for role in roles:
        keys += ROLE_SECRETS.get(role, ())
    if "db" in roles and engine == "mongodb":
        keys += MONGODB_SECRETS
    if "db" in roles and engine == "ferretdb" and cluster:
        keys += CLUSTER_SECRETS
    return tuple(dict.fromkeys(keys))


def allowed(roles, engine, cluster):
    """Every secret key a node with ``roles`` may receive: :func:`required` plus the optional."""
    keys = list(required(roles, engine, cluster))
    for role in roles:
        keys += OPTIONAL_SECRETS.get(role, ())
    return tuple(dict.fromkeys(keys))


def share(secrets, roles, engine, cluster):
    """The part of the ``secrets`` mapping a node with ``roles`` receives (no other key)."""
    if not isinstance(secrets, dict):
        return {}
    return {key: secrets[key] for key in allowed(roles, engine, cluster) if key in secrets}
