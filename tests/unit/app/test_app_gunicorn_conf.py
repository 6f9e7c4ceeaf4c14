"""The shipped gunicorn settings, read the way gunicorn reads them (the file executed as Python)."""

import importlib.util
import os
import pathlib
import re
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


def test_defaults_serve_the_app_on_loopback_and_stop_before_the_worker_timeout(read_conf):
    conf = read_conf()
    # What gunicorn would load: the module and the callable it names are the app's WSGI entry.
    module, _, name = conf["wsgi_app"].partition(":")
    spec = importlib.util.find_spec(module)
    assert spec is not None, conf["wsgi_app"]
    assert re.search(rf"^{name} = ", pathlib.Path(spec.origin).read_text(), re.M), conf["wsgi_app"]
    # Without WEBSTACK_BIND nothing listens beyond this host.
    assert all(bind.startswith(("127.0.0.1:", "unix:")) for bind in conf["bind"])
    # A graceful stop (supervisor, rolling deploy) ends before a worker counts as stuck.
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


def gunicorn_config(conf):
    """gunicorn's own Config with the file's settings applied, as gunicorn applies them."""
    from gunicorn.config import Config

    cfg = Config()
    for name, value in conf.items():
        if name in cfg.settings:
            cfg.set(name, value)
    return cfg


def parse(cfg, raw):
    """The request gunicorn's parser makes of ``raw`` (raises its Limit* errors)."""
    from gunicorn.http.message import Request
    from gunicorn.http.unreader import IterUnreader

    return Request(cfg, IterUnreader([raw]), ("127.0.0.1", 40000), 1)


def test_gunicorn_never_refuses_a_request_on_size(read_conf):
    # nginx (large_client_header_buffers 4 8k) is the gate and answers JSON; what it lets through,
    # possibly a little longer (re-escaped URI, X-Forwarded-For appended), gunicorn must take.
    cfg = gunicorn_config(read_conf())
    path = b"/api/notes/" + b"a" * 20_000
    headers = b"".join(b"X-Header-%d: v\r\n" % i for i in range(1_000))
    forwarded = b"X-Forwarded-For: " + b"1" * 16_000 + b", 203.0.113.7\r\n"
    raw = b"GET " + path + b" HTTP/1.1\r\nHost: app\r\n" + headers + forwarded + b"\r\n"
    request = parse(cfg, raw)
    assert request.path == path.decode()
    assert len(request.headers) == 1_002


def test_gunicorn_limits_are_within_what_it_accepts(read_conf):
    from gunicorn.http.message import MAX_HEADERS

    conf = read_conf()
    # 0 is "unlimited" for the request line (valid values 0..8190); more headers than
    # MAX_HEADERS would be cut back to it silently.
    assert conf["limit_request_line"] == 0
    assert conf["limit_request_fields"] == MAX_HEADERS
    # Far above nginx's 8 KiB per header line (0 would mean 8190 on gunicorn >= 25.2).
    assert conf["limit_request_field_size"] >= 4 * 8192
