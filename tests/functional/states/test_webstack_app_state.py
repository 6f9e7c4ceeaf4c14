"""
The webstack_app states through Salt's real loader: a venv made with the real python3, and a
program of a real supervisord (its own config, socket and program in a temp dir).
"""

import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from support.salt_modules import load

#: The same client the states use, for what the tests do to supervisord directly.
SUPERVISOR = load("_utils", "webstack_supervisor")

#: The program writes a line for each SIGHUP it gets (what gunicorn does with one: reload).
PROGRAM = textwrap.dedent(
    """
    import signal, sys, time
    signal.signal(signal.SIGHUP, lambda *_: print("HUP", flush=True))
    while True:
        time.sleep(1)
    """
)


@pytest.fixture
def supervisord(tmp_path):
    if not shutil.which("supervisord"):
        pytest.fail("supervisord is not installed (scripts/host-packages.txt: supervisor)")
    (tmp_path / "program.py").write_text(PROGRAM)
    socket = tmp_path / "supervisor.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            [unix_http_server]
            file={socket}
            chmod=0700
            [supervisord]
            nodaemon=true
            logfile={tmp_path}/supervisord.log
            pidfile={tmp_path}/supervisord.pid
            childlogdir={tmp_path}
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            [program:demo]
            command={sys.executable} -u {tmp_path}/program.py
            autostart=false
            startsecs=2
            stdout_logfile={tmp_path}/demo.log
            """
        )
    )
    proc = subprocess.Popen(["supervisord", "-c", str(conf)])
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "supervisord did not start"
            time.sleep(0.1)
        yield socket, tmp_path / "demo.log"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_a_stopped_program_is_started_then_left_running(loaders, supervisord):
    socket, _ = supervisord
    ret = loaders.states.webstack_app.program_running(name="demo", socket=str(socket))
    assert ret.result is True, ret.comment
    assert ret.changes == {"state": {"old": "STOPPED", "new": "RUNNING"}}
    again = loaders.states.webstack_app.program_running(name="demo", socket=str(socket))
    assert again.result is True and again.changes == {}
    assert again.comment == "demo is running"


def test_watch_sends_the_running_program_sighup(loaders, supervisord):
    socket, log = supervisord
    assert loaders.states.webstack_app.program_running(name="demo", socket=str(socket)).result
    ret = loaders.states.webstack_app.mod_watch(
        name="demo", sfun="program_running", socket=str(socket)
    )
    assert ret.result is True and ret.changes == {"signal": "HUP"}, ret.comment
    deadline = time.monotonic() + 10
    while "HUP" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the program got no SIGHUP"
        time.sleep(0.1)


def test_an_unknown_program_or_socket_fails_naming_it(loaders, supervisord, tmp_path):
    socket, _ = supervisord
    ret = loaders.states.webstack_app.program_running(name="nosuch", socket=str(socket))
    assert ret.result is False and "supervisord has no program 'nosuch'" in ret.comment
    gone = tmp_path / "gone.sock"
    ret = loaders.states.webstack_app.program_running(name="demo", socket=str(gone))
    assert ret.result is False and f"supervisord on {gone}" in ret.comment


def test_venv_is_made_once_without_pip(loaders, tmp_path):
    venv = tmp_path / "venv"
    ret = loaders.states.webstack_app.venv(name=str(venv), system_site_packages=True)
    assert ret.result is True, ret.comment
    assert ret.changes == {"venv": {"old": None, "new": str(venv)}}
    assert (venv / "bin" / "python").exists()
    assert not list(venv.glob("bin/pip*"))
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    again = loaders.states.webstack_app.venv(name=str(venv), system_site_packages=True)
    assert again.result is True and again.changes == {}


def test_venv_needs_an_absolute_path_and_makes_nothing(loaders, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ret = loaders.states.webstack_app.venv(name="venv")
    assert ret.result is False and "absolute" in ret.comment
    assert not (tmp_path / "venv").exists()


def test_a_program_still_starting_is_waited_for_and_never_signalled(loaders, supervisord):
    """Just spawned (as `supervisorctl update` leaves a new program): a SIGHUP then would reach
    gunicorn before its handlers are installed and kill it."""
    socket, log = supervisord
    SUPERVISOR._call(str(socket), "supervisor.startProcess", "demo", False)
    assert SUPERVISOR.process_state(str(socket), "demo") == "STARTING"
    watched = loaders.states.webstack_app.mod_watch(
        name="demo", sfun="program_running", socket=str(socket)
    )
    assert watched.result is True and watched.changes == {}, watched.comment
    assert "no SIGHUP needed" in watched.comment
    assert SUPERVISOR.process_state(str(socket), "demo") == "RUNNING"

    SUPERVISOR._call(str(socket), "supervisor.stopProcess", "demo", True)
    SUPERVISOR._call(str(socket), "supervisor.startProcess", "demo", False)
    ret = loaders.states.webstack_app.program_running(name="demo", socket=str(socket))
    # A change, so that Salt's watch does not follow it with a SIGHUP.
    assert ret.result is True and ret.changes == {"state": {"old": "STARTING", "new": "RUNNING"}}
    assert "HUP" not in (log.read_text() if log.exists() else "")


def test_a_dry_run_without_supervisord_says_what_would_happen(loaders, supervisord, tmp_path):
    """test=True on a bare node: supervisor is not installed yet, or the program not added."""
    socket, _ = supervisord
    gone = tmp_path / "gone.sock"
    ret = loaders.states.webstack_app.program_running(name="demo", socket=str(gone), test=True)
    assert ret.result is None and ret.comment.startswith("demo would be started"), ret.comment
    ret = loaders.states.webstack_app.program_running(name="nosuch", socket=str(socket), test=True)
    assert ret.result is None and ret.comment == "nosuch would be added and started"
    ret = loaders.states.webstack_app.program_running(name="demo", socket=str(socket), test=True)
    assert ret.result is None and "demo is STOPPED: it would be started" in ret.comment
    assert SUPERVISOR.process_state(str(socket), "demo") == "STOPPED"
