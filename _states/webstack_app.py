"""
The app node's runtime: its Python venv and its supervisor program.

Both replace a ``cmd.run`` guarded by ``creates`` / ``unless``. Salt looks those guards up as
``cmd.mod_run_check``, which no state module defines, and the loader then imports every state
module looking for it: 1.3 s of each state run on a lab node, the largest part of an idempotent
app apply (saltstack/salt#65158). These states check in-process instead: a file's existence,
and supervisord's XML-RPC on its socket (no ``supervisorctl``, 0.2 s per call).

.. code-block:: yaml

    the app's venv:
      webstack_app.venv:
        - name: /opt/webstack/venv
        - system_site_packages: true

    the app's program:
      webstack_app.program_running:
        - name: webstack-app
        - socket: /run/supervisor.sock
        - watch:
          - sls: webstack.app.code
"""

import logging
import os

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "webstack_app"


def __virtual__():
    for needed in ("webstack_supervisor.process_state", "webstack_poll.until"):
        if needed not in __utils__:
            return (False, f"webstack_app: the utils function {needed} is not synced")
    return __virtualname__


def _ret(name, result=True, comment="", changes=None):
    return {"name": name, "result": result, "comment": comment, "changes": changes or {}}


def _venv_python(name):
    return os.path.join(name, "bin", "python")


def venv(name, python="python3", system_site_packages=False):
    """
    A venv at ``name`` without pip of its own (``python -m venv --without-pip``): present once its
    ``bin/python`` exists; an existing venv is left as it is.

    name
        The venv's directory (absolute).

    python
        The interpreter that makes it.

    system_site_packages
        Let the venv see the system's packages (Debian's python3-flask etc.).
    """
    if not os.path.isabs(name):
        return _ret(name, False, f"the venv's path must be absolute, not {name!r}")
    if os.path.exists(_venv_python(name)):
        return _ret(name, comment=f"venv {name} is present")
    if __opts__["test"]:
        return _ret(name, None, f"venv {name} would be made", {"venv": {"old": None, "new": name}})
    cmd = [python, "-m", "venv", "--without-pip"]
    if system_site_packages:
        cmd.append("--system-site-packages")
    cmd.append(name)
    res = __salt__["cmd.run_all"](cmd, python_shell=False)
    if res["retcode"] != 0 or not os.path.exists(_venv_python(name)):
        return _ret(name, False, f"{' '.join(cmd)} failed ({res['retcode']}): {res['stderr']}")
    return _ret(name, comment=f"venv {name} made", changes={"venv": {"old": None, "new": name}})


def _state(socket, name):
    return __utils__["webstack_supervisor.process_state"](socket, name)


_WOULD_START = {"state": {"old": None, "new": "RUNNING"}}

#: supervisord is (re)starting the program: it has spawned it and waits for its ``startsecs``.
_STARTING = ("STARTING", "BACKOFF")


def _settled(socket, name, timeout):
    """The program's state once supervisord is no longer starting it (at most ``timeout`` s)."""
    state = _state(socket, name)
    for _waited in __utils__["webstack_poll.until"](timeout, 0.2):
        state = _state(socket, name)
        if state not in _STARTING:
            break
    return state


def program_running(name, socket="/run/supervisor.sock", timeout=60):
    """
    The supervisor program ``name`` is RUNNING: started if it is not, waited for (up to
    ``timeout`` seconds) while supervisord is starting it. With ``watch``, a change in what it
    watches sends the running program SIGHUP (see ``mod_watch``).

    name
        The program's name in supervisord's configuration.

    socket
        supervisord's unix socket.

    timeout
        How long a start may take (supervisord's ``startsecs`` and retries).
    """
    try:
        state = _state(socket, name)
    except CommandExecutionError as exc:
        state = exc
    if __opts__["test"]:
        return _dry_run(name, state)
    if isinstance(state, CommandExecutionError) or state is None:
        return _ret(name, False, str(state or f"supervisord has no program {name!r}"))
    if state == "RUNNING":
        return _ret(name, comment=f"{name} is running")
    try:
        # STARTING/BACKOFF: just spawned (`supervisorctl update` of a new or changed program);
        # it runs the current code once RUNNING. Reporting that as the change keeps `watch` from
        # sending a SIGHUP that would reach it before its signal handlers are installed.
        if state not in _STARTING:
            __utils__["webstack_supervisor.start"](socket, name)
        now = _settled(socket, name, timeout)
    except CommandExecutionError as exc:
        return _ret(name, False, str(exc))
    if now != "RUNNING":
        return _ret(name, False, f"{name} was {state} and is {now} (supervisord's log says why)")
    return _ret(name, comment=f"{name} is running", changes={"state": {"old": state, "new": now}})


def _dry_run(name, state):
    """What ``program_running`` would do, from the program's state (or why it has none: a dry run
    on a node the run would install supervisor on, or add the program to)."""
    if isinstance(state, CommandExecutionError):
        return _ret(name, None, f"{name} would be started ({state})", _WOULD_START)
    if state is None:
        return _ret(name, None, f"{name} would be added and started", _WOULD_START)
    if state == "RUNNING":
        return _ret(name, comment=f"{name} is running")
    changes = {"state": {"old": state, "new": "RUNNING"}}
    return _ret(name, None, f"{name} is {state}: it would be started", changes)


def mod_watch(name, sfun=None, socket="/run/supervisor.sock", signame="HUP", timeout=60, **kwargs):
    """
    What ``watch`` does to the program: ``signame`` when it is RUNNING (gunicorn's HUP starts
    new workers on the new code and retires the old ones gracefully; no request is refused);
    nothing when supervisord is starting it (it starts on the new code).
    """
    if sfun != "program_running":
        return _ret(name, False, f"webstack_app.{sfun} has no watch action")
    try:
        return _on_watch(name, socket, signame, timeout)
    except CommandExecutionError as exc:
        if __opts__["test"]:
            return _ret(name, None, f"{name} would get SIG{signame} once running ({exc})")
        return _ret(name, False, str(exc))


def _on_watch(name, socket, signame, timeout):
    state = _state(socket, name)
    if state in _STARTING:
        state = _settled(socket, name, timeout)
        if state == "RUNNING":
            return _ret(name, comment=f"{name} started on the new code: no SIG{signame} needed")
    if state != "RUNNING":
        return _ret(name, False, f"{name} is {state}: no SIG{signame} sent")
    if __opts__["test"]:
        return _ret(name, None, f"{name} would get SIG{signame}", {"signal": signame})
    if not __utils__["webstack_supervisor.signal"](socket, name, signame):
        return _ret(name, False, f"{name} is not running: no SIG{signame} sent")
    return _ret(name, comment=f"{name} got SIG{signame}", changes={"signal": signame})
