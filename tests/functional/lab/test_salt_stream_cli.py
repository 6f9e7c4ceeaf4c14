"""`lab apply`'s progress against the real salt CLI: a salt-master and minions
(pytest-salt-factories daemons, on loopback) and the command and environment `lab apply` runs on
its master (saltcmd.apply_command: ``lxc-attach --clear-env -v VAR=...``, here ``env -i
VAR=...``, plus this master's config dir and an SLS), read by labkit.progress.SaltStream. One
minion's states take three seconds longer than the other's; a third minion is accepted but
stopped.

What it proves that the unit tests (which feed Salt's outputter's text) cannot: the CLI prints
each minion's document as that minion returns (with that environment: without
PYTHONUNBUFFERED=1 every return came at the end, measured), in the shape the parser reads, and a
minion that never answers comes back as Salt's "did not return" placeholder.
"""

import secrets
import sys
from pathlib import Path

import pytest
from labkit import progress, saltcmd

SLS = """\
{%- set pause = {"fast": 0, "slow": 3}[grains["id"].split("-")[0]] %}
progress-pause:
  cmd.run:
    - name: sleep {{ pause }}
progress-after:
  test.succeed_without_changes:
    - require:
      - cmd: progress-pause
"""


def _as_the_lab_runs_it(target, config_dir, sls):
    """saltcmd.apply_command's salt command line and environment, on this host's salt."""
    attach = saltcmd.apply_command(target, 10)
    split = attach.index("--")
    env = [attach[i + 1] for i in range(split) if attach[i] == "-v"]
    salt, *args = attach[split + 1 :]
    assert salt == "salt"
    local = Path(sys.executable).parent / "salt"
    return ["env", "-i", *env, local, f"--config-dir={config_dir}", *args, sls]


@pytest.fixture(scope="module")
def master(salt_factories, tmp_path_factory):
    tree = tmp_path_factory.mktemp("progress_tree")
    (tree / "progress.sls").write_text(SLS)
    daemon = salt_factories.salt_master_daemon(
        f"master-{secrets.token_hex(3)}", overrides={"file_roots": {"base": [str(tree)]}}
    )
    with daemon.started():
        yield daemon


def test_each_minion_is_read_as_it_returns_and_a_silent_one_is_reported(master):
    tag = secrets.token_hex(3)
    gone = master.salt_minion_daemon(f"gone-{tag}")
    with gone.started():
        pass  # its key is accepted; now it is down
    fast, slow = (master.salt_minion_daemon(f"{kind}-{tag}") for kind in ("fast", "slow"))
    with fast.started(), slow.started():
        argv = _as_the_lab_runs_it(f"*-{tag}", master.config_dir, "progress")
        run = progress.SaltStream(argv, kill_after=180)
        returned = [(minion, ret, seconds) for minion, ret, seconds in run]
    assert not run.killed, run.stderr
    assert [m for m, _, _ in returned] == [f"fast-{tag}", f"slow-{tag}", f"gone-{tag}"], (
        run.noise,
        run.stderr,
    )
    (_, fast_ret, fast_s), (_, slow_ret, slow_s), (_, gone_ret, _) = returned
    assert slow_s - fast_s >= 2.5  # read when it came, not when the CLI ended
    for ret in (fast_ret, slow_ret):
        assert {s["__id__"] for s in ret.values()} == {"progress-pause", "progress-after"}
        assert all(s["result"] is True and "duration" in s for s in ret.values())
    assert progress.did_not_return(gone_ret), gone_ret
    assert run.noise == []
