"""
``python -m webstack_app.checkconfig FILE``: can the app start with this configuration file?

Exit status 0 if so; otherwise 1 with the reason on stderr. Meant for Salt's ``check_cmd`` on the
rendered ``app.json``: a bad file is refused before it replaces the live one, since gunicorn
reloads (HUP) would otherwise boot every new worker into the same error. The file is checked on
its own: ``WEBSTACK_<KEY>`` variables of the caller are ignored.
"""

import sys

from .config import CONFIG_PATH_ENV, ConfigError, load_settings
from .db import Database


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m webstack_app.checkconfig FILE", file=sys.stderr)
        return 2
    path = args[0]
    try:
        # Database() parses mongo_uri exactly as the app will, without connecting.
        Database(load_settings({CONFIG_PATH_ENV: path})).close()
    except ConfigError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
