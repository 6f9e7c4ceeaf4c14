"""The webstack functional fixtures (see functional/modules/webstack_fixtures.py)."""

from functional.modules.webstack_fixtures import haproxy_lab, loaders, vrrp_lab  # noqa: F401
