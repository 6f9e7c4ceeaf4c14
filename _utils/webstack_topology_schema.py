"""
The shapes of the webstack pillar: which keys each mapping may have, which characters each string
that lands in a configuration file may hold, and what a secret's value must look like.

Pure standard library, no Salt, like its sibling ``webstack_topology_rules.py`` (which loads this
file by path). Every check appends to a list of errors, each starting with the offending key, and
never raises, whatever the shape of its input. No message ever shows a secret's value.
"""

import difflib
import ipaddress
import re

#: The topology name, the Patroni scope and etcd's cluster token: a word of config files.
SCOPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
#: A node name and the CA minion's name (``master.minion_id``): the minion id, a DNS label.
NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
IFACE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
REPLSET_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
DBIDENT_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# --------------------------------------------------------------------------------------------------
# Keys and shapes
# --------------------------------------------------------------------------------------------------

_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def key_text(key):
    """A mapping key as it appears in a message: plain words as they are, anything else quoted."""
    if isinstance(key, str) and _PLAIN_KEY_RE.fullmatch(key):
        return key
    return shown(key)


def shown(value, limit=60):
    """``repr(value)``, cut short: a message names garbage without repeating all of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(key, known):
    """``", did you mean 'x'?"`` for the closest known key, else empty."""
    if not isinstance(key, str):
        return ""
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f", did you mean {match[0]!r}?" if match else ""


def unknown_keys(errors, mapping, known, where, *, kind="key", sep="."):
    """One error per key of ``mapping`` not in ``known``, in the mapping's order.

    ``where``: the mapping's own key (``"network"``, ``"nodes[0]"``, ``"webstack:secrets"``), or
    empty for the top level; ``kind`` names what the key should have been (``"port"``...).
    """
    for key in mapping:
        if key in known:
            continue
        name = f"{where}{sep}{key_text(key)}" if where else key_text(key)
        errors.append(
            f"{name}: unknown {kind}{did_you_mean(key, known)} (expected one of {', '.join(known)})"
        )


def mapping(errors, value, where, what, *, required=True):
    """``value`` if it is a mapping; else an error (none when it is absent and not required)."""
    if isinstance(value, dict):
        return value
    if value is None and not required:
        return {}
    found = "missing" if value is None else f"{shown(value)} is not a mapping"
    errors.append(f"{where}: {found}; must be a mapping with {what}")
    return None


def is_int(value, low, high):
    """An integer from ``low`` to ``high`` (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def matches(pattern, value):
    """``value`` is a string ``pattern`` matches as a whole (``$`` would let a newline end it)."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


# --------------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------------

#: Every character a password or key may hold: none that a config file, a URI, a .pgpass line or
#: YAML treats specially (no ``#``, ``:``, ``@``, quotes, spaces...). Hex and base64 both fit.
SECRET_RE = re.compile(r"[A-Za-z0-9._~+/=-]+")
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 1024
#: MongoDB's keyFile rule: 6-1024 characters of the base64 set (whitespace ignored).
KEYFILE_RE = re.compile(r"[A-Za-z0-9+/= \t\r\n]+")
#: Secrets that are PEM blocks rather than passwords (the site's own VIP certificate), and the
#: block labels each may hold: a certificate (and its chain), one unencrypted private key.
PEM_SECRETS = {
    "vip_certificate": ("CERTIFICATE",),
    "vip_private_key": ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "EC PARAMETERS"),
}
#: Secrets that come as a pair: one without the other is an error.
PAIRED_SECRETS = (("vip_certificate", "vip_private_key"),)
_PEM_BLOCK_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n(?:[A-Za-z0-9+/=]{1,76}\r?\n)+-----END \1-----"
)
#: Values (lower-cased, letters and digits only, possibly repeated) that are nobody's secret.
PLACEHOLDERS = (
    "changeme",
    "change",
    "replaceme",
    "password",
    "passwd",
    "passw0rd",
    "secret",
    "example",
    "default",
    "placeholder",
    "fixme",
    "todo",
    "test",
    "admin",
    "webstack",
    "none",
    "null",
    "insecure",
    "letmein",
    "qwerty",
    "x",
)


def is_placeholder(value):
    """A value that stands in for a secret: ``CHANGE-ME``, ``password``, one repeated character."""
    norm = re.sub(r"[^a-z0-9]", "", value.lower())
    if len(set(value)) <= 1 or not norm or "changeme" in norm or "replaceme" in norm:
        return True
    return any(
        len(norm) % len(word) == 0 and norm == word * (len(norm) // len(word))
        for word in PLACEHOLDERS
    )


def _pem_problem(key, value):
    """Why ``value`` is not a PEM value for ``key`` (None when it is one)."""
    labels = PEM_SECRETS[key]
    text = value.strip()
    blocks, position = [], 0
    for block in _PEM_BLOCK_RE.finditer(text):
        if text[position : block.start()].strip():
            return "holds something other than PEM blocks"
        blocks.append(block.group(1))
        position = block.end()
    if not blocks or text[position:].strip():
        return "is not PEM (-----BEGIN ...----- base64 lines -----END ...-----)"
    wrong = [label for label in blocks if label not in labels]
    if wrong:
        return f"holds a {wrong[0]} block (expected {' or '.join(labels)})"
    if key == "vip_private_key" and sum(label != "EC PARAMETERS" for label in blocks) != 1:
        return "must hold exactly one unencrypted private key"
    return None


def _keyfile_problem(value):
    if is_placeholder(value):
        return _PLACEHOLDER
    if not 6 <= len(value.strip()) <= 1024 or not KEYFILE_RE.fullmatch(value):
        return "must be 6-1024 base64 characters (MongoDB's rule)"
    return None


def _password_problem(value):
    if not value.isprintable():
        return "holds a control character (a newline, a tab...)"
    if is_placeholder(value):
        return _PLACEHOLDER
    if not SECRET_RE.fullmatch(value):
        return "holds a character outside A-Z a-z 0-9 . _ ~ + / = - (it lands in config files)"
    if not MIN_SECRET_LENGTH <= len(value) <= MAX_SECRET_LENGTH:
        return (
            f"{len(value)} characters; {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} needed "
            "(e.g. `openssl rand -hex 20`)"
        )
    return None


_PLACEHOLDER = "is a placeholder, not a secret: generate one, e.g. `openssl rand -hex 20`"


def secret_problem(key, value):
    """Why the secret ``key`` cannot have ``value`` (None when it can). Never shows the value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "missing or empty (see pillar/webstack_secrets.sls.example)"
    if not isinstance(value, str):
        return f"is not a string but {type(value).__name__} (quote it in the YAML file)"
    if key in PEM_SECRETS:
        return _pem_problem(key, value)
    if key == "mongodb_keyfile":
        return _keyfile_problem(value)
    return _password_problem(value)


# --------------------------------------------------------------------------------------------------
# webstack:lookup: the overrides of salt/webstack/parameters/defaults.yaml that land in files
# --------------------------------------------------------------------------------------------------

#: An absolute path, no ``.`` or ``..`` component, no character a config file or a shell reads.
_PATH_RE = re.compile(r"(/(?!\.\.?(/|$))[A-Za-z0-9._+@-]+)+/?")
#: A user, group, service, program or instance name.
_LOOKUP_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
_PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.:=~-]{0,99}")
#: One token of a config line: a size, a duration, a version, a number.
_WORD_RE = re.compile(r"[A-Za-z0-9._+-]{1,64}")
_WORDS_RE = re.compile(r"[A-Za-z0-9._+-]{1,64}( [A-Za-z0-9._+-]{1,64}){0,7}")
#: A salt:// or https:// URL (it lands unquoted in an SLS file: no ``#``, quotes, spaces, braces).
_URL_RE = re.compile(r"[a-z][a-z0-9+.-]*://[A-Za-z0-9._~:/?@!$&()*+,;=%-]+")
_HASH_RE = re.compile(r"[A-Za-z0-9]{1,16}[=:][0-9A-Fa-f]{16,128}|[0-9A-Fa-f]{32,128}")
_URL_PATH_RE = re.compile(r"/[A-Za-z0-9._~/-]{0,200}")
_SYSCTL_RE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_-]+)+")
_CIPHERS_RE = re.compile(r"[A-Za-z0-9_:+.!@=-]{1,2048}")


def _word(value):
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    return isinstance(value, int | float) or _WORD_RE.fullmatch(value) is not None


def _text(value):
    # Lands inside a double-quoted haproxy lf-string: no quote, backslash or log-format '%'.
    return isinstance(value, str) and len(value) <= 200 and not set(value) & set('"\\%')


def _ipv4(value):
    try:
        ipaddress.IPv4Address(value if isinstance(value, str) else "-")
    except ValueError:
        return False
    return True


def _packages(value):
    return isinstance(value, list) and all(matches(_PACKAGE_RE, item) for item in value)


#: What each kind of value is, and how a message says so.
LOOKUP_KINDS = {
    "path": (lambda v: matches(_PATH_RE, v), "an absolute path (A-Z a-z 0-9 . _ + @ - and /)"),
    "name": (lambda v: matches(_LOOKUP_NAME_RE, v), "a name (A-Z a-z 0-9 _ . @ -, at most 64)"),
    "dbident": (lambda v: matches(DBIDENT_RE, v), "a database identifier (a-z 0-9 _)"),
    "package": (lambda v: matches(_PACKAGE_RE, v), "a package name"),
    "packages": (_packages, "a list of package names"),
    "word": (_word, "a number or one word (A-Z a-z 0-9 . _ + -)"),
    "words": (lambda v: matches(_WORDS_RE, v), "words of A-Z a-z 0-9 . _ + - and single spaces"),
    "url": (lambda v: v == "" or matches(_URL_RE, v), "a salt:// or https:// URL"),
    "hash": (
        lambda v: v == "" or matches(_HASH_RE, v) or matches(_URL_RE, v),
        "a hash (sha256=<hex>) or a URL",
    ),
    "urlpath": (lambda v: matches(_URL_PATH_RE, v), "a URL path (/ then A-Z a-z 0-9 . _ ~ / -)"),
    "ipv4": (_ipv4, "an IPv4 address"),
    "text": (_text, "text without '\"', '\\' or '%'"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "count": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "a whole number >= 0",
    ),
    "ciphers": (lambda v: matches(_CIPHERS_RE, v), "an OpenSSL cipher list (no space)"),
}

_P, _N, _W = "path", "name", "word"
#: Every ``webstack:lookup`` value the states or templates write into a file or a command line,
#: by its path (``*``: any key), with its kind. Others are only checked for control characters.
LOOKUP = {
    "pkg.install_recommends": "flag",
    "pkg.cache_valid_time": "count",
    "pki.dir": _P,
    "pki.ca_cert": _P,
    "pki.key": _P,
    "pki.cert": _P,
    "pki.key_group": _N,
    "pki.key_algo": _W,
    "pki.key_size": _W,
    "pki.days_valid": _W,
    "pki.days_remaining": _W,
    "pki.check_policy": "flag",
    "pki.ca_wait": _W,
    "pki.ca.dir": _P,
    "pki.ca.key": _P,
    "pki.ca.cert": _P,
    "pki.ca.days_valid": _W,
    "pki.ca.days_remaining": _W,
    "pki.ca.mine_function": _N,
    "lb.packages": "packages",
    "lb.haproxy.service": _N,
    "lb.haproxy.config": _P,
    "lb.haproxy.admin_socket": _P,
    "lb.haproxy.server_state_file": _P,
    "lb.haproxy.stats_user": _N,
    "lb.haproxy.maxconn": _W,
    "lb.haproxy.nbthread": _W,
    "lb.haproxy.timeouts.*": _W,
    "lb.haproxy.check.path": "urlpath",
    "lb.haproxy.check.*": _W,
    "lb.haproxy.retries": _W,
    "lb.haproxy.slowstart": _W,
    "lb.haproxy.client_limits.*": _W,
    "lb.haproxy.json_errors.*.kind": _W,
    "lb.haproxy.json_errors.*.message": "text",
    "lb.haproxy.json_errors.*.retry_after": _W,
    "lb.haproxy.restart_delay": _W,
    "lb.haproxy.tls.dir": _P,
    "lb.haproxy.tls.redirect_http": "flag",
    "lb.haproxy.tls.hsts_max_age": _W,
    "lb.haproxy.tls.min_version": _W,
    "lb.haproxy.tls.ciphers": "ciphers",
    "lb.haproxy.tls.ciphersuites": "ciphers",
    "lb.keepalived.service": _N,
    "lb.keepalived.config": _P,
    "lb.keepalived.notify_script": _P,
    "lb.keepalived.state_file": _P,
    "lb.keepalived.script_user": _N,
    "lb.keepalived.instance": _N,
    "lb.keepalived.preempt_delay": _W,
    "lb.keepalived.haproxy_tracking": _W,
    "lb.keepalived.script_interval": _W,
    "lb.keepalived.profiles.*.*": _W,
    "app.packages": "packages",
    "app.user": _N,
    "app.group": _N,
    "app.home": _P,
    "app.venv": _P,
    "app.pip_wheels": _P,
    "app.src": _P,
    "app.config": _P,
    "app.socket_dir": _P,
    "app.socket": _P,
    "app.gunicorn_config": _P,
    "app.supervisor.service": _N,
    "app.supervisor.program": _N,
    "app.supervisor.conf_dir": _P,
    "app.supervisor.socket": _P,
    "app.nginx.service": _N,
    "app.nginx.site": _P,
    "app.nginx.site_enabled": _P,
    "app.nginx.client_max_body_size": _W,
    "app.nginx.large_client_header_buffers": "words",
    "app.nginx.client_header_timeout": _W,
    "app.nginx.client_body_timeout": _W,
    "app.timeouts.*": _W,
    "ferretdb.version": _W,
    "ferretdb.binary": _P,
    "ferretdb.source": "url",
    "ferretdb.source_hash": "hash",
    "ferretdb.user": _N,
    "ferretdb.service": _N,
    "ferretdb.listen": "ipv4",
    "postgresql.version": _W,
    "postgresql.packages": "packages",
    "postgresql.service": _N,
    "postgresql.conf_dir": _P,
    "postgresql.data_dir": _P,
    "patroni.packages": "packages",
    "patroni.service": _N,
    "patroni.config": _P,
    "patroni.data_dir": _P,
    "patroni.bin_dir": _P,
    "patroni.socket_dir": _P,
    "patroni.pgpass": _P,
    "patroni.createcluster_conf": _P,
    "patroni.check_config": _P,
    "patroni.drop_default_cluster": _P,
    "patroni.default_cluster.version": _W,
    "patroni.default_cluster.name": _N,
    "patroni.users.*": "dbident",
    "patroni.watchdog": _W,
    "etcd.packages": "packages",
    "etcd.service": _N,
    "etcd.config": _P,
    "etcd.dropin": _P,
    "etcd.data_dir": _P,
    "etcd.start_timeout": _W,
    "etcd.heartbeat_interval": _W,
    "etcd.election_timeout": _W,
    "mongodb.version": _W,
    "mongodb.repo_url": "url",
    "mongodb.repo_key_url": "url",
    "mongodb.package": "package",
    "mongodb.service": _N,
    "mongodb.config": _P,
    "mongodb.keyfile": _P,
    "mongodb.data_dir": _P,
    "sysctl.*": _W,
    "sysctl_file": _P,
    "sysctl_defaults.*": _W,
}
#: Mappings whose keys land in files too (``sysctl``: the kernel settings' names).
LOOKUP_KEYS = {"sysctl": _SYSCTL_RE, "sysctl_defaults": _SYSCTL_RE}
_LOOKUP_PATTERNS = [(tuple(path.split(".")), kind) for path, kind in LOOKUP.items()]
#: The mappings on the way to a known value: anything else there is an error.
_LOOKUP_SECTIONS = {
    pattern[:end] for pattern, _ in _LOOKUP_PATTERNS for end in range(1, len(pattern))
}


def _lookup_kind(path):
    """The kind of the value at ``path`` (a tuple of keys); exact patterns before wildcards."""
    found = None
    for pattern, kind in _LOOKUP_PATTERNS:
        if _fits(pattern, path):
            if "*" not in pattern:
                return kind
            found = found or kind
    return found


def _fits(pattern, path):
    """``path`` (a tuple of keys) is ``pattern`` (a tuple of keys, ``*`` standing for any)."""
    return len(pattern) == len(path) and all(
        p in ("*", k) for p, k in zip(pattern, path, strict=True)
    )


def _is_section(path):
    return any(_fits(section, path) for section in _LOOKUP_SECTIONS)


def _lookup_strings(errors, value, where):
    """Every string of ``value`` (keys and values, at any depth) is printable: no newline, tab..."""
    if isinstance(value, str):
        if not value.isprintable():
            errors.append(f"{where}: holds a control character (a newline, a tab...)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not key.isprintable():
                errors.append(f"{where}:{key_text(key)}: a key holds a control character")
            else:
                _lookup_strings(errors, item, f"{where}:{key_text(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _lookup_strings(errors, item, f"{where}[{index}]")


def _lookup_values(errors, value, path):
    if isinstance(value, str) and not value.isprintable():
        return  # reported by _lookup_strings
    where = "webstack:lookup:" + ":".join(key_text(k) for k in path)
    kind = _lookup_kind(path)
    if kind is not None:
        check, what = LOOKUP_KINDS[kind]
        if not check(value):
            errors.append(f"{where}: {shown(value)} is not {what}")
        return
    if not isinstance(value, dict):
        if _is_section(path):
            errors.append(f"{where}: {shown(value)} is not a mapping")
        return
    key_re = LOOKUP_KEYS.get(path[-1]) if len(path) == 1 else None
    for key, item in value.items():
        if isinstance(key, str) and not key.isprintable():
            continue  # reported by _lookup_strings
        if key_re is not None and not matches(key_re, key):
            errors.append(f"{where}:{key_text(key)}: not a kernel setting's name")
        _lookup_values(errors, item, (*path, key))


def lookup_problems(lookup, errors):
    """Every problem of the ``webstack:lookup`` mapping (None: nothing given, nothing checked)."""
    if lookup is None:
        return
    if not isinstance(lookup, dict):
        errors.append(f"webstack:lookup: {shown(lookup)} is not a mapping")
        return
    _lookup_strings(errors, lookup, "webstack:lookup")
    for key, value in lookup.items():
        _lookup_values(errors, value, (key,))
