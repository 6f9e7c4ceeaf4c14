"""The webstack functional fixtures (see functional/modules/webstack_fixtures.py)."""

from functional.modules.webstack_fixtures import (  # noqa: F401
    haproxy_capture,
    haproxy_lab,
    keepalived_capture,
    loaders,
    vrrp_lab,
)
