"""The shipped gunicorn settings, read the way gunicorn reads them (the file executed as Python)."""

import os
import runpy

import pytest


@pytest.fixture
def read_conf(app_dir, monkeypatch):
    def read(**environ):
        for name in ("WEBSTACK_BIND", "WEBSTACK_WORKERS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(app_dir / "gunicorn.conf.py"))

    return read


def test_defaults(read_conf):
    conf = read_conf()
    assert conf["wsgi_app"] == "webstack_app.wsgi:app"
    assert conf["bind"] == ["127.0.0.1:8000"]
    assert conf["workers"] == min(2 * len(os.sched_getaffinity(0)) + 1, 8)
    assert conf["accesslog"] is None
    assert conf["errorlog"] == "-"
    assert conf["graceful_timeout"] < conf["timeout"]


def test_environment(read_conf):
    conf = read_conf(WEBSTACK_BIND="unix:/run/webstack-app/gunicorn.sock", WEBSTACK_WORKERS="3")
    assert conf["bind"] == ["unix:/run/webstack-app/gunicorn.sock"]
    assert conf["workers"] == 3


def test_worker_default_is_capped(read_conf, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert read_conf()["workers"] == 8


def test_configuration_errors_stop_the_master(read_conf, monkeypatch, tmp_path):
    config = tmp_path / "app.json"
    config.write_text('{"node_name": "app1"}')
    monkeypatch.setenv("WEBSTACK_APP_CONFIG", str(config))
    monkeypatch.delenv("WEBSTACK_SECRET_KEY", raising=False)
    # gunicorn turns a RuntimeError from on_starting into "Error: <message>" and exit status 1.
    with pytest.raises(RuntimeError, match="webstack-app configuration: secret_key is required"):
        read_conf()["on_starting"](server=None)
