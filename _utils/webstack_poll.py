"""
Poll until a deadline: the one loop behind the ``wait_*`` functions of the webstack modules.

Plain Python (synced by ``saltutil.sync_utils``, reached through ``__utils__``). A generator, not
a function taking a callback: a callback would run inside the utils loader's context, where the
calling module's ``__salt__``/``__utils__`` are not packed.
"""

import logging
import time

log = logging.getLogger(__name__)


def until(timeout, interval):
    """
    Yield before each attempt (the seconds waited so far, one decimal): at once, then every
    ``interval`` seconds while ``timeout`` seconds have not passed (``timeout=0``: once). The
    caller breaks out when an attempt succeeds; the loop ending means the deadline passed.

    .. code-block:: python

        for _waited in __utils__["webstack_poll.until"](timeout, interval):
            if ready():
                break
        else:
            raise CommandExecutionError("not ready after {timeout}s")
    """
    start = time.monotonic()
    deadline = start + float(timeout)
    attempt = 0
    while True:
        attempt += 1
        yield round(time.monotonic() - start, 1)
        if time.monotonic() >= deadline:
            log.debug("webstack: gave up after %s attempts in %ss", attempt, timeout)
            return
        time.sleep(float(interval))
