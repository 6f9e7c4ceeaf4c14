"""Fixtures for the app's unit tests: the app with no database behind it."""

import pathlib

import pytest
from support.app_factory import app_factory

APP_DIR = pathlib.Path(__file__).resolve().parents[3] / "app"

SECRET = "unit-test-secret-key-0123456789"
# Nothing listens on port 1 of the loopback: every database call fails after the (short) timeouts.
DEAD_DB = {
    "mongo_uri": "mongodb://127.0.0.1:1/",
    "server_selection_timeout_ms": 300,
    "connect_timeout_ms": 300,
    "socket_timeout_ms": 300,
}


@pytest.fixture
def app_dir():
    """The app's source directory (holds gunicorn.conf.py and the package)."""
    return APP_DIR


@pytest.fixture
def make_app():
    """Build apps whose database is unreachable; extra settings override the defaults."""
    base = {"secret_key": SECRET, "node_name": "unit1", "node_address": "192.0.2.10", **DEAD_DB}
    with app_factory(lambda **settings: {**base, **settings}) as make:
        yield make


@pytest.fixture
def client(make_app):
    return make_app().test_client()
