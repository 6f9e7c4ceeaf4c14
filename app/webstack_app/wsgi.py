"""WSGI entry point for gunicorn: ``webstack_app.wsgi:app``."""

from . import create_app

app = create_app()
