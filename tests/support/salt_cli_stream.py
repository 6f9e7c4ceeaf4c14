"""What ``salt --out=json`` (no ``--static``) writes while minions return, for the tests of the
lab's progress output: each document made by Salt's own JSON outputter (the master sets no
``output_indent``: four spaces), and a real process that writes them with pauses in between, in
place of ``lxc-attach <master> salt ...``."""

import sys

import salt.output.json_out


def document(minion, ret):
    """One minion's return as the salt CLI prints it: ``{minion: ret}`` and a newline."""
    salt.output.json_out.__opts__ = {}  # the loader's dunder; no output_indent, as on the master
    return salt.output.json_out.output({minion: ret}) + "\n"


def no_return(minion, jid="20250101000000000000"):
    """The document the CLI makes up for a minion that did not answer within ``-t``."""
    return document(
        minion,
        "Minion did not return. [No response]\nThe minions may not have all finished running and"
        " any remaining minions will return upon completion. To look up the return data for this"
        f" job later, run the following command:\n\nsalt-run jobs.lookup_jid {jid}",
    )


def salt_cli(*steps, stderr="", stderr_fill=0):
    """argv of a Python process that writes ``stderr_fill`` bytes and then ``stderr`` to its
    stderr, then each text step to its stdout (flushed, as ``PYTHONUNBUFFERED=1`` makes the real
    CLI) and sleeps for each number."""
    code = (
        "import sys, time\n"
        f"sys.stderr.write('E' * {stderr_fill} + {stderr!r}); sys.stderr.flush()\n"
        f"for step in {steps!r}:\n"
        "    if isinstance(step, str):\n"
        "        sys.stdout.write(step); sys.stdout.flush()\n"
        "    else:\n"
        "        time.sleep(step)\n"
    )
    return [sys.executable, "-c", code]


def state(sid, sls, *, result=True, changes=None, comment="", duration=1.0, start="10:00:00"):
    """One entry of a state.apply return (what summarize() and the bench read)."""
    return {
        "__id__": sid,
        "__sls__": sls,
        "result": result,
        "changes": changes or {},
        "comment": comment,
        "duration": duration,
        "start_time": start,
        "__run_num__": 0,
    }
