"""The lab's full state return (last-apply.json) is root's only: mode 0600 from its first byte, an
older, more open file replaced rather than rewritten; and `lab apply` says each minion's result as
it returns. No root, no containers: salt is a process that prints what the salt CLI prints."""

import json
import os
import re
import stat
import types

import pytest
from labkit import saltcmd
from support.salt_cli_stream import document, no_return, salt_cli, state


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_apply_writes_the_full_return_for_its_owner_only(tmp_path, monkeypatch):
    target = tmp_path / "state" / "last-apply.json"
    monkeypatch.setattr(saltcmd, "LAST_APPLY", target)
    result = {"lb1": {"file_|-x_|-/etc/x_|-managed": {"result": True, "changes": {}}}}
    monkeypatch.setattr(
        saltcmd, "apply_command", lambda *args: salt_cli(document("lb1", result["lb1"]))
    )
    monkeypatch.setattr(saltcmd, "say", lambda *args: None)
    lab = types.SimpleNamespace(nodes=[types.SimpleNamespace(name="lb1")], minions=["lb1"])
    old_umask = os.umask(0)  # the most open umask: the mode must not depend on it
    try:
        ok, _ = saltcmd.apply(lab)
    finally:
        os.umask(old_umask)
    assert ok
    assert json.loads(target.read_text()) == result
    assert mode(target) == 0o600
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file left


def test_an_older_world_readable_file_is_replaced(tmp_path):
    target = tmp_path / "last-apply.json"
    target.write_text("old")
    target.chmod(0o644)
    before = target.stat().st_ino
    saltcmd.write_private(target, "new")
    assert target.read_text() == "new"
    assert mode(target) == 0o600
    assert target.stat().st_ino != before  # a new file: a reader of the old one saw no new text


LB1 = {
    "pkg_|-a_|-a_|-installed": state("a", "webstack.lb.package", changes={"haproxy": {}}),
    "file_|-b_|-/etc/b_|-managed": state("b", "webstack.lb.haproxy"),
}
DB1 = {
    "cmd_|-c_|-c_|-run": state(
        "c",
        "webstack.db",
        result=False,
        comment="Command failed",
        changes={"stderr": "ERROR: no such table\nline 2\nline 3", "retcode": 1},
    )
}


@pytest.fixture
def applied(tmp_path, monkeypatch):
    """apply() on a lab of lb1, db1, app1 and ca, where lb1 returns, db1 a second later with a
    failure, ca is reported as not answering and app1 never appears: (ok, summary, lines said)."""
    monkeypatch.setattr(saltcmd, "LAST_APPLY", tmp_path / "last-apply.json")
    stream = salt_cli(document("lb1", LB1), 1.0, document("db1", DB1), no_return("ca"))
    monkeypatch.setattr(saltcmd, "apply_command", lambda target, timeout: stream)
    said = []
    monkeypatch.setattr(saltcmd, "say", said.append)
    lab = types.SimpleNamespace(minions=["lb1", "db1", "app1", "ca"])
    ok, summary = saltcmd.apply(lab)
    return ok, summary, "\n".join(said).splitlines(), tmp_path / "last-apply.json"


STAMPED = re.compile(r"^    \[\s*([\d.]+)s\] (\S+)\s+(ok|FAILED|no answer)\b")


def test_a_line_per_minion_as_it_returns_with_its_seconds_then_the_summary(applied):
    ok, _, lines, _ = applied
    assert not ok
    stamped = [(n, m.groups()) for n, line in enumerate(lines) if (m := STAMPED.match(line))]
    assert [(minion, status) for _, (_, minion, status) in stamped] == [
        ("lb1", "ok"),
        ("db1", "FAILED"),
        ("ca", "no answer"),
    ]
    (lb1_at, (lb1_s, _, _)), (db1_at, (db1_s, _, _)), (ca_at, _) = stamped
    assert float(db1_s) - float(lb1_s) >= 0.9  # the second between the two returns
    assert lines[lb1_at].endswith("states=2 changed=1 failed=0")
    # The failure right away, its first line only; in full in the summary at the end.
    assert lines[db1_at + 1 : db1_at + 3] == ["      - c: Command failed", lines[ca_at]]
    summary = lines[ca_at + 1 :]
    assert [line.split()[0] for line in summary if re.match(r"    \S", line)] == [
        "app1",
        "ca",
        "db1",
        "lb1",
        "full",  # full return: ...
    ]
    assert "        ERROR: no such table" in summary


def test_minions_that_never_returned_have_no_answer_and_no_return_in_the_file(applied):
    _, summary, _, last_apply = applied
    assert summary["app1"]["errors"] == ["no answer (minion did not return)"]
    assert summary["ca"]["errors"] == ["no answer (minion did not return)"]
    assert summary["lb1"] == {"states": 2, "failed": 0, "changed": 1, "errors": []}
    assert summary["db1"]["failed"] == 1
    assert json.loads(last_apply.read_text()) == {"lb1": LB1, "db1": DB1}


def test_the_apply_streams_unbuffered_with_the_timeout():
    argv = saltcmd.apply_command("lb1", 600)
    command = argv[argv.index("--") + 1 :]
    assert command == ["salt", "--out=json", "-t", "600", "lb1", "state.apply"]  # no --static
    # Without it the CLI's print() holds each return's end back while stdout is a pipe.
    assert "PYTHONUNBUFFERED=1" in argv[: argv.index("--")]


def _tree(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_extension_digest_follows_what_the_minions_would_sync(tmp_path, monkeypatch):
    """`lab apply` syncs the custom modules only when this digest moves (minions no longer sync
    them on each state.apply): an edit to a module, state or util moves it, a runner or a
    bytecode cache does not."""
    monkeypatch.setattr(saltcmd, "REPO", tmp_path)
    _tree(tmp_path, {"_modules/a.py": "A = 1\n", "_states/b.py": "", "_utils/c.py": ""})
    first = saltcmd.extension_digest()
    _tree(tmp_path, {"_runners/r.py": "R = 1\n", "_modules/__pycache__/a.cpython-311.py": "x"})
    assert saltcmd.extension_digest() == first
    for name in ("_modules/a.py", "_states/b.py", "_utils/c.py"):
        before = saltcmd.extension_digest()
        _tree(tmp_path, {name: (tmp_path / name).read_text() + "# edited\n"})
        assert saltcmd.extension_digest() != before, name
    _tree(tmp_path, {"_states/new.py": ""})
    assert saltcmd.extension_digest() != first


def test_synced_digest_is_none_before_the_first_sync(tmp_path, monkeypatch):
    monkeypatch.setattr(saltcmd, "SYNCED", tmp_path / "synced-extensions.sha256")
    assert saltcmd.synced_digest() is None
    (tmp_path / "synced-extensions.sha256").write_text("abc\n")
    assert saltcmd.synced_digest() == "abc"
