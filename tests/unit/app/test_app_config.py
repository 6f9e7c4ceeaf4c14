"""Settings: file, environment overrides, defaults and the errors that name the faulty key."""

import json

import pytest
from webstack_app import checkconfig, config, create_app
from webstack_app.config import ConfigError, load_settings, settings_from_mapping

SECRET = "s3cret-s3cret-s3cret"


def write(tmp_path, values, name="app.json"):
    path = tmp_path / name
    path.write_text(values if isinstance(values, str) else json.dumps(values))
    return path


def test_defaults_fill_every_optional_key():
    settings = settings_from_mapping({"secret_key": SECRET})
    assert settings.mongo_uri == "mongodb://127.0.0.1:27017/"
    assert settings.db_name == "webstack"
    assert settings.server_selection_timeout_ms == 1500
    assert settings.connect_timeout_ms == 1500
    assert settings.socket_timeout_ms == 3000
    assert settings.max_content_length == 65536
    assert settings.log_level == "INFO"
    assert settings.node_address is None
    assert settings.node_name  # the host name


def test_file_then_environment(tmp_path):
    path = write(
        tmp_path,
        {
            "secret_key": SECRET,
            "node_name": "app1",
            "node_address": "10.0.0.11",
            "mongo_uri": "mongodb://webstack:pw@127.0.0.1:27017/webstack?authMechanism=PLAIN",
            "socket_timeout_ms": 2500,
            "log_level": "debug",
        },
    )
    environ = {
        "WEBSTACK_APP_CONFIG": str(path),
        "WEBSTACK_NODE_NAME": "app2",
        "WEBSTACK_SOCKET_TIMEOUT_MS": "900",
        "WEBSTACK_BIND": "unix:/run/x.sock",  # gunicorn's variable: not a key, not an error
    }
    settings = load_settings(environ)
    assert settings.node_name == "app2"
    assert settings.node_address == "10.0.0.11"
    assert settings.socket_timeout_ms == 900
    assert settings.log_level == "DEBUG"
    assert settings.mongo_uri.endswith("authMechanism=PLAIN")


def test_environment_alone_is_enough_when_the_default_file_is_absent(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", str(tmp_path / "absent.json"))
    settings = load_settings({"WEBSTACK_SECRET_KEY": SECRET, "WEBSTACK_DB_NAME": "other"})
    assert settings.db_name == "other"


def test_default_file_is_read(tmp_path, monkeypatch):
    path = write(tmp_path, {"secret_key": SECRET, "db_name": "fromfile"})
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", str(path))
    assert load_settings({}).db_name == "fromfile"


def test_explicit_missing_file_is_an_error(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match=r"WEBSTACK_APP_CONFIG names .*nope\.json"):
        load_settings({"WEBSTACK_APP_CONFIG": str(missing), "WEBSTACK_SECRET_KEY": SECRET})


def test_missing_secret_key_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", str(tmp_path / "absent.json"))
    with pytest.raises(ConfigError, match=r"secret_key is required.*WEBSTACK_SECRET_KEY"):
        load_settings({})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"colour": "blue"}, "unknown configuration key.*colour"),
        ({"socket_timeout_ms": "3000"}, "socket_timeout_ms must be an integer"),
        ({"socket_timeout_ms": True}, "socket_timeout_ms must be an integer"),
        ({"connect_timeout_ms": 0}, "connect_timeout_ms must be between 1 and"),
        ({"max_content_length": 10**9}, "max_content_length must be between"),
        ({"node_name": 7}, "node_name must be a string"),
        ({"node_name": "  "}, "node_name must not be empty"),
        ({"db_name": None}, "db_name must be a string"),
        ({"db_name": "web.stack"}, "db_name must be 1-63 letters"),
        ({"log_level": "LOUD"}, "log_level must be one of"),
        ({"mongo_uri": "http://db:27017"}, "mongo_uri must start with mongodb://"),
    ],
)
def test_wrong_values_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping({"secret_key": SECRET, **values})


def test_secret_values_are_never_echoed():
    with pytest.raises(ConfigError) as short:
        settings_from_mapping({"secret_key": "hunter2"})
    assert "secret_key must be at least" in str(short.value)
    assert "hunter2" not in str(short.value)
    with pytest.raises(ConfigError) as uri:
        settings_from_mapping({"secret_key": SECRET, "mongo_uri": "postgres://u:topsecret@h/db"})
    assert "topsecret" not in str(uri.value)


def test_bad_environment_integer_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", str(tmp_path / "absent.json"))
    environ = {"WEBSTACK_SECRET_KEY": SECRET, "WEBSTACK_SERVER_SELECTION_TIMEOUT_MS": "1s"}
    with pytest.raises(ConfigError, match="WEBSTACK_SERVER_SELECTION_TIMEOUT_MS must be an int"):
        load_settings(environ)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "must hold a JSON object, got list")],
)
def test_unreadable_file_contents(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError, match=message):
        load_settings({"WEBSTACK_APP_CONFIG": str(path)})


def test_malformed_uri_stops_the_app_at_creation():
    with pytest.raises(ConfigError, match="mongo_uri is invalid"):
        create_app({"secret_key": SECRET, "mongo_uri": "mongodb://127.0.0.1:notaport/"})


def test_app_gets_secret_and_body_limit(make_app):
    app = make_app(max_content_length=4096)
    assert app.config["SECRET_KEY"] == "unit-test-secret-key-0123456789"
    assert app.config["MAX_CONTENT_LENGTH"] == 4096
    assert app.debug is False


def run_check(tmp_path, values, capsys):
    path = write(tmp_path, values)
    status = checkconfig.main([str(path)])
    output = capsys.readouterr()
    return status, output.out + output.err


def test_check_command_accepts_a_usable_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WEBSTACK_SECRET_KEY", "x")  # the file is checked on its own
    status, output = run_check(tmp_path, {"secret_key": SECRET, "node_name": "app1"}, capsys)
    assert status == 0
    assert output.endswith("app.json: ok\n")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"node_name": "app1"}, "secret_key is required"),
        ({"secret_key": SECRET, "mongo_uri": "mongodb://h:port/"}, "mongo_uri is invalid"),
        ({"secret_key": SECRET, "timeout": 3}, "unknown configuration key(s): timeout"),
    ],
)
def test_check_command_refuses_an_unusable_file(tmp_path, capsys, monkeypatch, values, message):
    monkeypatch.setenv("WEBSTACK_SECRET_KEY", SECRET)  # must not rescue the file
    status, output = run_check(tmp_path, values, capsys)
    assert status == 1
    assert message in output
    assert output.startswith(str(tmp_path / "app.json"))


def test_check_command_usage(capsys):
    assert checkconfig.main([]) == 2
    assert "usage:" in capsys.readouterr().err
