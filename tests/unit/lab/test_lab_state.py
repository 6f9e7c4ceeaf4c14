"""Every `lab` command works on the running lab: `up` saves its topology (as scaled) in lab.json and
a later load, with no topology given, rebuilds the same Lab from it; another topology asked for
while it runs is refused. No root, no containers: the state dir is a tmp_path."""

import json

import pytest
from labkit import cli, config, lxc
from labkit.run import LabError
from support.state_tree import REPO

LAB = REPO / "topology" / "lab.yaml"
HA_DB = REPO / "topology" / "lab-ha-db.yaml"


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    """The state dir under tmp_path, and no LAB_* variable of the caller's shell."""
    for name in ("LAB_TOPOLOGY", "LAB_NODES", "LAB_BRIDGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "STATE", tmp_path / "state")
    monkeypatch.setattr(config, "STATE_FILE", tmp_path / "state" / "lab.json")
    return config.STATE_FILE


def up(topology=LAB, nodes=None):
    """What `lab up` does first: load (no lab running yet) and save the state."""
    assert config.running() is None
    lab = config.load(topology, nodes, env=True, reread=True)
    config.save_state(lab)
    return lab


def shape(lab):
    return (
        lab.topology_file,
        lab.spec,
        lab.bridge,
        lab.gateway,
        lab.prefix,
        lab.vip,
        [(n.name, n.address, n.roles) for n in lab.containers],
        lab.derived,
    )


def test_no_lab_running_loads_the_given_or_default_topology(monkeypatch):
    assert [n.name for n in config.load().nodes] == ["lb1", "lb2", "app1", "app2", "db1"]
    assert config.load(HA_DB).topology_file == HA_DB
    monkeypatch.setenv("LAB_TOPOLOGY", str(HA_DB))
    assert config.load().topology_file == HA_DB


def test_the_saved_state_rebuilds_the_same_lab(state):
    lab = up(HA_DB)
    saved = json.loads(state.read_text())
    assert saved["version"] == config.STATE_VERSION
    assert saved["topology"] == str(HA_DB)
    assert saved["containers"] == ["master", "lb1", "lb2", "app1", "app2", "db1", "db2", "db3"]
    assert saved["bridge"] == "wsbr0"
    again = config.load()
    assert shape(again) == shape(lab)
    assert again.vip == "10.77.0.100"
    assert again.node("db3").address == "10.77.0.33"


def test_a_scaled_lab_is_seen_by_a_later_load_with_no_arguments():
    up(LAB, "app=3")
    lab = config.load()
    assert lab.scaled and lab.spec == "app=3"
    assert [n["name"] for n in lab.derived["app"]] == ["app1", "app2", "app3"]
    assert lab.node("app3").address == "10.77.0.23"
    # the same scaling asked for again is the running lab
    assert shape(config.load(LAB, "app=3", env=True)) == shape(lab)
    assert shape(config.load(nodes="app=3", env=True)) == shape(lab)


def test_the_state_keeps_the_topology_when_the_file_changes(tmp_path):
    topology = tmp_path / "mine.yaml"
    topology.write_text(LAB.read_text())
    lab = up(topology)
    topology.write_text(HA_DB.read_text())
    assert shape(config.load()) == shape(lab)
    with pytest.raises(LabError, match=r"mine\.yaml \(5 nodes\); .*differs \(the file changed"):
        config.load(env=True, reread=True)  # `up` converging the running lab


def test_another_topology_is_refused_naming_both():
    up(HA_DB)
    with pytest.raises(LabError) as refused:
        config.load(LAB, env=True)
    assert str(refused.value) == (
        "the running lab was brought up from topology/lab-ha-db.yaml (7 nodes); "
        "--topology "
        f"{LAB} differs: run `lab down` first"
    )


def test_another_node_count_is_refused():
    up(LAB, "app=3")
    with pytest.raises(LabError, match=r"topology/lab\.yaml --nodes app=3 \(6 nodes\); --nodes"):
        config.load(nodes="app=4")
    with pytest.raises(LabError, match=r"--topology \S*lab\.yaml differs"):
        config.load(LAB)  # the file's own node counts are another topology


def test_the_environment_is_checked_by_the_cli_only(monkeypatch):
    lab = up(HA_DB)
    monkeypatch.setenv("LAB_TOPOLOGY", str(LAB))
    with pytest.raises(LabError, match=r"LAB_TOPOLOGY=\S*lab\.yaml differs"):
        config.load(env=True)
    # Python users (tests/e2e's Lab(), bench) get the running lab: e2e's topology switch sets
    # LAB_TOPOLOGY before its `lab down`, and makes a Lab() in between
    assert shape(config.load()) == shape(lab)
    monkeypatch.setenv("LAB_TOPOLOGY", str(HA_DB))
    assert shape(config.load(env=True)) == shape(lab)
    monkeypatch.setenv("LAB_NODES", "db=1")
    with pytest.raises(LabError, match=r"LAB_TOPOLOGY=.* LAB_NODES=db=1 differs"):
        config.load(env=True)


def test_the_same_topology_is_accepted(tmp_path):
    lab = up(HA_DB)
    assert shape(config.load(HA_DB, env=True, reread=True)) == shape(lab)
    copy = tmp_path / "copy.yaml"  # same content, another path: the same topology
    copy.write_text(HA_DB.read_text())
    assert shape(config.load(copy, env=True)) == shape(lab)


def test_after_down_another_topology_may_come_up(state):
    up(HA_DB)
    state.unlink()  # what `lab down` does (it removes the whole state dir)
    assert config.load(LAB, env=True, reread=True).topology_file == LAB


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        json.dumps({"bridge": "wsbr0", "topology": str(LAB), "containers": ["master"]}),
        json.dumps({"version": config.STATE_VERSION, "bridge": "wsbr0", "topology": str(LAB)}),
    ],
    ids=["not-json", "not-an-object", "old-format", "no-topology"],
)
def test_a_corrupt_or_old_state_is_a_clear_error(state, text):
    state.parent.mkdir(parents=True)
    state.write_text(text)
    for load in (config.load, lambda: config.load(LAB, env=True)):
        with pytest.raises(LabError) as refused:
            load()
        assert str(state) in str(refused.value)
        assert "run `lab down`" in str(refused.value)
    assert isinstance(config.read_state(), dict)  # `down` still works from what it can read


def test_cli_exec_resolves_a_node_only_the_saved_topology_has(monkeypatch):
    up(HA_DB)
    calls = []
    monkeypatch.setattr(lxc, "attach_passthrough", lambda *argv: calls.append(argv) or 0)
    assert cli.main(["exec", "db3", "hostname", "-f"]) == 0
    assert calls == [("db3", "hostname", "-f")]


def test_cli_refuses_another_topology(monkeypatch, capsys):
    up(HA_DB)
    monkeypatch.setattr(lxc, "attach_passthrough", lambda *argv: pytest.fail("attached"))
    monkeypatch.setenv("LAB_TOPOLOGY", str(LAB))
    assert cli.main(["exec", "db1", "true"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lab: the running lab was brought up from topology/lab-ha-db.yaml")
    assert "run `lab down` first" in err


def test_no_other_lab_when_none_runs_or_it_is_the_one_asked_for(monkeypatch):
    assert config.other_lab() is None
    up(LAB, "app=3")
    assert config.other_lab(LAB, "app=3") is None
    monkeypatch.setenv("LAB_TOPOLOGY", str(LAB))
    monkeypatch.setenv("LAB_NODES", "app=3")
    assert config.other_lab() is None


def test_another_topology_size_or_checkout_is_another_lab(tmp_path):
    up(LAB)
    assert config.other_lab(HA_DB) == str(LAB)
    assert config.other_lab(LAB, "app=3") == str(LAB)
    # The same file name in another clone: that lab's master serves the other clone's tree.
    clone = tmp_path / "clone" / "topology"
    clone.mkdir(parents=True)
    (clone / "lab.yaml").write_text(LAB.read_text())
    assert config.other_lab(clone / "lab.yaml") == str(LAB)
