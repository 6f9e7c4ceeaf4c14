"""The e2e session: bring the LXC lab up (or converge a running one), test, always tear it down.
A lab running from another topology or checkout (a killed run left it) is torn down first.

`WEBSTACK_LAB_KEEP=1` keeps the lab after the session (to look around); `LAB_TOPOLOGY` picks
another topology. Each phase's duration is printed as it ends and again in the summary.
"""

import contextlib
import os
import subprocess
import threading
import time

import pytest
from e2e_lab import REPO, Lab
from labkit import config as lab_config

PHASES = []


def _say(config, message):
    """A line on the terminal now, even while pytest captures output (a fixture's setup is
    captured, and shown only if it fails: a slow `lab up` would be a silent one in CI's log)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        if reporter is not None:
            reporter.write_line(message)
        else:
            print(message, flush=True)


def _lab_command(config, *args, timeout):
    """Run `lab ARGS` with its progress lines shown live; return the exit code."""
    lab = Lab()
    with subprocess.Popen(
        [*lab.cli, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        timer = threading.Timer(timeout, proc.kill)  # a hung `lab` must not hang CI
        timer.start()
        try:
            for line in proc.stdout:
                _say(config, "  lab| " + line.rstrip())
            return proc.wait()
        finally:
            timer.cancel()


def _phase(config, name, started):
    seconds = time.monotonic() - started
    PHASES.append((name, seconds))
    _say(config, f"e2e phase {name}: {seconds:.1f}s")


@pytest.fixture(scope="session")
def lab(request):
    """The running lab (up once per session); torn down at the end unless WEBSTACK_LAB_KEEP=1."""
    if os.geteuid() != 0:
        pytest.skip("the LXC lab needs root")
    config = request.config
    try:
        _take_over(config)
        started = time.monotonic()
        code = _lab_command(config, "up", timeout=35 * 60)
        _phase(config, "lab up", started)
        if code != 0:
            pytest.fail(f"`lab up` exited {code} (its output is above)", pytrace=False)
        handle = Lab()
        started = time.monotonic()
        handle.wait_healthy(timeout=180)
        _phase(config, "healthy", started)
        yield handle
    finally:
        if os.environ.get("WEBSTACK_LAB_KEEP") == "1":
            _say(config, "WEBSTACK_LAB_KEEP=1: the lab stays up (`make lab-down` removes it)")
        else:
            started = time.monotonic()
            _lab_command(config, "down", timeout=10 * 60)
            _phase(config, "lab down", started)


def _take_over(config):
    """The session tears the lab down at its end and rebuilds it to switch topologies: a lab left
    running by another checkout or topology (a killed run's) is replaced, not tested, and said so.
    `lab up` alone would refuse it, failing every e2e test."""
    foreign = lab_config.other_lab()
    if foreign is None:
        return
    _say(config, f"e2e: the running lab was brought up from {foreign}: `lab down` first")
    _lab_down(config, "lab down (another lab was up)")


def _lab_down(config, phase):
    """`lab down`, timed as ``phase``; a failure fails the session's setup."""
    started = time.monotonic()
    code = _lab_command(config, "down", timeout=10 * 60)
    _phase(config, phase, started)
    if code != 0:
        pytest.fail(f"`lab down` exited {code} (its output is above)", pytrace=False)


@pytest.fixture
def healthy(lab, request):
    """Every test starts from (and each chaos test must leave) a healthy stack."""
    started = time.monotonic()
    lab.wait_healthy(timeout=120)
    seconds = time.monotonic() - started
    if seconds > 1:
        _say(request.config, f"  (waited {seconds:.1f}s for a healthy stack)")
    return lab


#: Tests that rebuild the lab with another topology (three db nodes) run after every other e2e
#: test, together, on one rebuild.
LAST = ("test_e2e_patroni.py", "test_e2e_intruder.py", "test_e2e_capture.py")

#: The three-db topology those tests run on.
HA_TOPOLOGY = REPO / "topology" / "lab-ha-db.yaml"


def pytest_collection_modifyitems(items):
    here = str(REPO / "tests" / "e2e")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: item.fspath.basename in LAST)  # stable: order kept otherwise


@pytest.fixture(scope="session")
def switch_topology(request):
    """``switch_topology(path)``: rebuild the lab from bare containers with another topology."""
    return lambda topology: _switch_topology(request.config, topology)


@pytest.fixture(scope="session")
def ha_lab(lab, switch_topology):
    """The lab with three db nodes (a Patroni cluster): the running one when it has them, else
    rebuilt from bare containers with them (a single PostgreSQL holding data does not turn into
    a Patroni member by itself). Looks at the lab running now, not the session's first handle."""
    current = Lab()
    if len(current.dbs) < 3:
        current = switch_topology(HA_TOPOLOGY)
    current.wait_healthy(timeout=300)
    return current


def _switch_topology(config, topology):
    # Every later `lab` command and Lab() of the session works on this topology.
    os.environ["LAB_TOPOLOGY"] = str(topology)
    _lab_down(config, "lab down")
    started = time.monotonic()
    code = _lab_command(config, "up", "--topology", str(topology), timeout=35 * 60)
    _phase(config, f"lab up {topology.stem}", started)
    if code != 0:
        pytest.fail(f"`lab up --topology {topology}` exited {code} (above)", pytrace=False)
    return Lab()


def pytest_terminal_summary(terminalreporter):
    if PHASES:
        terminalreporter.section("e2e lab phases")
        for name, seconds in PHASES:
            terminalreporter.write_line(f"{name:<12} {seconds:8.1f}s")
