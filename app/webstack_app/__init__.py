"""
The webstack Flask app: an HTML page, a JSON API for notes, and health endpoints.

``create_app()`` reads the configuration file and environment (see :mod:`.config`);
``create_app({...})`` takes the settings from the mapping alone, which is what tests use.
"""

from flask import Flask

from . import api, errors, health, logs, pages, requestlog
from .config import load_settings, settings_from_mapping
from .services import EXTENSION_KEY, Services


def _common_headers(response):
    # Every response names the server that made it (the page, whoami): a cache in between would
    # show the wrong server during a failover.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def create_app(config=None):
    """Build the app from ``config`` (a mapping of settings) or from the file and environment."""
    settings = load_settings() if config is None else settings_from_mapping(dict(config))
    logs.configure(settings.log_level)

    app = Flask(__name__)
    app.config.update(
        DEBUG=False,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.extensions[EXTENSION_KEY] = Services.build(settings)

    requestlog.init_app(app)
    app.after_request(_common_headers)
    errors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    return app
