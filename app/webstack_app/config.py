"""
Settings of the app: a JSON file, then one environment variable per key.

The Salt state renders ``/etc/webstack/app.json``; ``WEBSTACK_APP_CONFIG`` names another file. Each
key may be overridden by ``WEBSTACK_<KEY>`` (e.g. ``WEBSTACK_MONGO_URI``), which is how a developer
or a test runs the app without writing a file. Every problem is reported as a :class:`ConfigError`
naming the key (or variable), and secret values are never echoed.
"""

import json
import os
import re
import socket
from dataclasses import dataclass

CONFIG_PATH_ENV = "WEBSTACK_APP_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/webstack/app.json"
ENV_PREFIX = "WEBSTACK_"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_TIMEOUT_MS = 120_000
MAX_BODY_BYTES = 16 * 1024 * 1024
MIN_SECRET_KEY_LENGTH = 16
_DB_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and what is wrong."""


@dataclass(frozen=True)
class Settings:
    """Validated settings, made by :func:`load_settings` or :func:`settings_from_mapping`."""

    node_name: str
    node_address: str | None
    mongo_uri: str
    db_name: str
    secret_key: str
    server_selection_timeout_ms: int
    connect_timeout_ms: int
    socket_timeout_ms: int
    max_content_length: int
    log_level: str


def _text(key, value, *, secret=False, optional=False):
    if optional and value in (None, ""):
        return None
    if not isinstance(value, str):
        shown = "" if secret else f", got {type(value).__name__}"
        raise ConfigError(f"{key} must be a string{shown}")
    if not value.strip():
        raise ConfigError(f"{key} must not be empty")
    return value


def _integer(key, value, minimum, maximum):
    # bool is an int in Python: `true` in the JSON file must not silently become 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key} must be between {minimum} and {maximum}, got {value}")
    return value


def _timeout(key, value):
    return _integer(key, value, 1, MAX_TIMEOUT_MS)


def _mongo_uri(key, value):
    value = _text(key, value, secret=True)
    if not value.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(f"{key} must start with mongodb:// or mongodb+srv://")
    return value


def _secret_key(key, value):
    value = _text(key, value, secret=True)
    if len(value) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"{key} must be at least {MIN_SECRET_KEY_LENGTH} characters long")
    return value


def _db_name(key, value):
    value = _text(key, value)
    # MongoDB forbids /\. "$ and more in database names; FerretDB is stricter still.
    if not _DB_NAME.fullmatch(value):
        raise ConfigError(f"{key} must be 1-63 letters, digits, '_' or '-', got {value!r}")
    return value


def _log_level(key, value):
    value = _text(key, value).upper()
    if value not in LOG_LEVELS:
        raise ConfigError(f"{key} must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value


# key -> (validator, default). A default of _REQUIRED means the key has no default at all;
# callables are evaluated only when the key is absent.
_REQUIRED = object()
_FIELDS = {
    "node_name": (_text, socket.gethostname),
    "node_address": (lambda k, v: _text(k, v, optional=True), None),
    "mongo_uri": (_mongo_uri, "mongodb://127.0.0.1:27017/"),
    "db_name": (_db_name, "webstack"),
    "secret_key": (_secret_key, _REQUIRED),
    "server_selection_timeout_ms": (_timeout, 1500),
    "connect_timeout_ms": (_timeout, 1500),
    "socket_timeout_ms": (_timeout, 3000),
    "max_content_length": (lambda k, v: _integer(k, v, 1, MAX_BODY_BYTES), 65536),
    "log_level": (_log_level, "INFO"),
}
# Keys whose environment override is parsed as an integer (environment values are all strings).
_INT_KEYS = frozenset(
    ("server_selection_timeout_ms", "connect_timeout_ms", "socket_timeout_ms", "max_content_length")
)


def settings_from_mapping(values):
    """Validate a mapping of settings (missing keys take their defaults) into :class:`Settings`."""
    if not isinstance(values, dict):
        raise ConfigError(f"the configuration must be a JSON object, got {type(values).__name__}")
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(
            f"unknown configuration key(s): {', '.join(map(str, unknown))} "
            f"(known: {', '.join(_FIELDS)})"
        )
    result = {}
    for key, (validate, default) in _FIELDS.items():
        if key in values:
            result[key] = validate(key, values[key])
        elif default is _REQUIRED:
            raise ConfigError(
                f"{key} is required: set it in the configuration file or in "
                f"{ENV_PREFIX}{key.upper()}"
            )
        else:
            result[key] = default() if callable(default) else default
    return Settings(**result)


def _read_file(path, explicit):
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{CONFIG_PATH_ENV} names {path}, which does not exist") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(values).__name__}")
    return values


def _env_overrides(environ):
    overrides = {}
    for key in _FIELDS:
        name = ENV_PREFIX + key.upper()
        if name not in environ:
            continue
        raw = environ[name]
        if key in _INT_KEYS:
            try:
                overrides[key] = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        else:
            overrides[key] = raw
    return overrides


def load_settings(environ=None):
    """
    Read the configuration file (``WEBSTACK_APP_CONFIG`` or the default path), apply the
    ``WEBSTACK_<KEY>`` environment overrides and validate the result.

    A missing default file is fine (everything can come from the environment); a missing file that
    was named explicitly is an error, since it almost certainly is a typo in a unit file.
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get(CONFIG_PATH_ENV)
    path = explicit or DEFAULT_CONFIG_PATH
    values = _read_file(path, explicit=bool(explicit))
    values.update(_env_overrides(environ))
    return settings_from_mapping(values)
