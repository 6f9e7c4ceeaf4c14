"""The apps a test builds, closed at the end: for the app's unit and functional fixtures."""

import contextlib

from webstack_app import create_app


@contextlib.contextmanager
def app_factory(settings):
    """``make(**overrides)`` builds an app on ``settings(**overrides)``; every app's database
    client is closed when the block ends."""
    apps = []

    def make(**overrides):
        app = create_app(settings(**overrides))
        apps.append(app)
        return app

    try:
        yield make
    finally:
        for app in apps:
            app.extensions["webstack"].database.close()
