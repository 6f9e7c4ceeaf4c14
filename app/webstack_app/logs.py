"""The app's logging: its own handler on stderr, in gunicorn's line format."""

import logging
import sys

LOGGER_NAME = "webstack_app"
# gunicorn's error log format, so that one stderr stream reads uniformly.
FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record, not at creation."""

    # A handler built in one test (or before a daemon redirects stderr) must not keep writing to
    # a stream that has since been replaced or closed.
    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        """StreamHandler.__init__ assigns the stream; the property ignores it."""


def configure(level):
    """Set the app logger's level and give it one stderr handler (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not any(isinstance(handler, StderrHandler) for handler in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
