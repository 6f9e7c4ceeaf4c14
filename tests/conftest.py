"""Suite-wide settings shared by unit, functional, integration and e2e tests."""

import logging
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root():
    """The checkout's root directory."""
    return REPO


def pytest_unconfigure(config):
    # Salt installs logging handlers whose stream pytest has closed by the time the interpreter
    # exits; Salt's deferred handler then flushes its queue from an atexit hook and prints
    # "--- Logging error --- ValueError: I/O operation on closed file" after pytest's summary.
    # Empty those queues and detach Salt's handlers: the summary line stays the last thing printed.
    for ref in list(logging._handlerList):  # every handler ever created, as weak references
        handler = ref()
        if handler is None or not type(handler).__module__.startswith("salt"):
            continue
        queue = getattr(handler, "_DeferredStreamHandler__messages", None)
        if queue is not None:
            queue.clear()
        for name in [None, *logging.root.manager.loggerDict]:
            logger = logging.getLogger(name)
            if handler in getattr(logger, "handlers", []):
                logger.removeHandler(handler)
