"""The lab's full state return (last-apply.json) is root's only: mode 0600 from its first byte, an
older, more open file replaced rather than rewritten. No root, no containers: salt is a stub."""

import json
import os
import stat
import types

from labkit import saltcmd


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_apply_writes_the_full_return_for_its_owner_only(tmp_path, monkeypatch):
    target = tmp_path / "state" / "last-apply.json"
    monkeypatch.setattr(saltcmd, "LAST_APPLY", target)
    result = {"lb1": {"file_|-x_|-/etc/x_|-managed": {"result": True, "changes": {}}}}
    monkeypatch.setattr(saltcmd, "salt_json", lambda *args, **kwargs: result)
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
