"""Where a converge's time goes (benchkit.breakdown), from synthetic state.apply returns shaped like
the lab's last-apply.json; its tables in results.md; and what the bench reads for it of `lab
apply`'s output and files."""

import datetime
import json
import os
import subprocess
import sys

import pytest
from benchkit import breakdown, converge, report
from labkit import saltcmd


def st(function, sid, start, ms, sls="webstack.x", **extra):
    """One ``(state key, state)`` of a return: ``function`` module.function, ``start`` HH:MM:SS."""
    module, fun = function.split(".")
    state = {"__id__": sid, "__sls__": sls, "result": True, "changes": {}, "comment": "x"}
    state |= {"start_time": start, "duration": ms} | extra
    return f"{module}_|-{sid}_|-{sid}-name_|-{fun}", state


def ret(*states):
    return dict(states)


#: A small converge: the CA, an lb, an app and a db node that waits on Patroni and finishes last.
CONVERGE = {
    "ca": ret(
        st("webstack_pki.signing_policies_loaded", "ca-policies", "10:00:00.500000", 1500),
    ),
    "lb1": ret(
        st("pkg.installed", "lb-pkg", "10:00:01", 12000, sls="webstack.lb.package"),
        st("webstack_pki.ca_certificate", "lb-ca", "10:00:13", 2000, sls="webstack.pki"),
        st("service.running", "lb-haproxy", "10:00:15.5", 500, sls="webstack.lb.haproxy"),
    ),
    "app1": ret(
        st("pkgrepo.managed", "app-repo", "10:00:01", 3000),
        st("pkg.installed", "app-pkg", "10:00:04", 20000, sls="webstack.app.package"),
        st("cmd.run", "webstack-app-schema-collections-cmd-run", "10:00:24", 6800),
        st("pkg.purged", "app-old", "10:00:31", 1000),  # not an install: everything else
    ),
    "db1": ret(
        st("pkg.installed", "db-pkg", "10:00:01", 30000, sls="webstack.db.package"),
        st("x509.private_key_managed", "db-key", "10:00:31", 400, sls="webstack.pki"),
        # Its sub-state lies within it (Salt's sub_state_run): listed, not counted twice.
        st("file.managed", "db-key", "10:00:31.2", 100, sls="webstack.pki", __state_ran__=True),
        st("webstack_patroni.member_running", "db-member", "10:00:32", 9000, sls="webstack.db"),
        st("cmd.run", "db-init", "10:00:41", 1000, sls="webstack.db"),
    ),
}
RETURNED = {"ca": 3.0, "lb1": 17.5, "app1": 33.0, "db1": 43.0}


def test_the_ten_slowest_states_across_all_minions_in_seconds():
    many = {"m1": ret(*(st("cmd.run", f"s{i}", "10:00:00", 1000 * i) for i in range(1, 15)))}
    many["m2"] = ret(st("pkg.installed", "big", "10:00:00", 99000, sls="webstack.m2"))
    slowest = breakdown.analyse(many)["slowest"]
    assert len(slowest) == 10
    assert slowest[0] == {
        "minion": "m2",
        "id": "big",
        "sls": "webstack.m2",
        "function": "pkg.installed",
        "seconds": 99.0,
    }
    assert [r["id"] for r in slowest[1:]] == [f"s{i}" for i in range(14, 5, -1)]


def test_a_sub_state_is_not_among_the_slowest_or_counted_twice():
    run = breakdown.analyse({"db1": CONVERGE["db1"]})
    ids = [(r["id"], r["function"]) for r in run["slowest"]]
    assert ("db-key", "x509.private_key_managed") in ids and ("db-key", "file.managed") not in ids
    assert run["minions"]["db1"]["states"] == 5
    assert run["minions"]["db1"]["other_s"] == pytest.approx(0.4 + 9 + 1)


def test_package_installs_against_everything_else_per_minion():
    minions = breakdown.analyse(CONVERGE, RETURNED)["minions"]
    app = minions["app1"]
    assert app["packages_s"] == pytest.approx(3 + 20)  # pkgrepo.managed and pkg.installed
    assert app["other_s"] == pytest.approx(6.8 + 1)  # pkg.purged is not an install
    assert app["states_s"] == pytest.approx(30.8)
    assert app["span_s"] == pytest.approx(31)  # 10:00:01 to 10:00:32
    assert app["between_states_s"] == pytest.approx(0.2)
    assert app["returned_s"] == 33.0
    assert app["outside_states_s"] == pytest.approx(2)  # rendering before, the return after
    assert minions["lb1"]["packages_s"] == pytest.approx(12)
    assert minions["ca"]["packages_s"] == 0
    assert app["overlap_s"] == pytest.approx(0)


def test_a_parallel_package_install_overlaps_the_states_beside_it():
    """`parallel: true`: the install runs in its own process while the key and certificate are
    made. Their time is counted once in the time between states, and shown as run alongside."""
    converge = {
        "db1": ret(
            st("pkg.installed", "db-pkg", "10:00:01", 30000, sls="webstack.db.package"),
            st("x509.private_key_managed", "db-key", "10:00:01.5", 2000, sls="webstack.pki"),
            st("x509.certificate_managed", "db-crt", "10:00:04", 3000, sls="webstack.pki"),
            st("cmd.run", "db-restart", "10:00:32", 1000, sls="webstack.db"),
        )
    }
    db = breakdown.analyse(converge, {"db1": 34.0})["minions"]["db1"]
    assert db["states_s"] == pytest.approx(36)
    assert db["overlap_s"] == pytest.approx(5)  # key and certificate, inside the install
    assert db["span_s"] == pytest.approx(32)  # 10:00:01 to 10:00:33
    assert db["between_states_s"] == pytest.approx(1)  # 10:00:31 to 10:00:32: nothing ran


def test_the_critical_path_is_the_minion_the_master_heard_from_last():
    path = breakdown.analyse(CONVERGE, RETURNED)["critical_path"]
    assert path["minion"] == "db1"
    assert path["wall_s"] == 43.0
    assert path["wall_measured"].startswith("returned at the master")
    assert [r["id"] for r in path["longest"]] == ["db-pkg", "db-member", "db-init", "db-key"]
    assert path["waits"] == [
        {
            "minion": "db1",
            "id": "db-member",
            "sls": "webstack.db",
            "function": "webstack_patroni.member_running",
            "seconds": 9.0,
            "waits_for": "the Patroni cluster's leader (the other db nodes)",
        }
    ]


def test_without_the_masters_times_the_last_state_to_end_decides():
    returned = {"ca": 3.0, "lb1": 99.0}  # not every minion: not used
    path = breakdown.analyse(CONVERGE, returned)["critical_path"]
    assert path["minion"] == "db1"
    assert path["wall_s"] == pytest.approx(41.5)  # 10:00:00.5 (ca's first) to 10:00:42
    assert "returned_s" not in breakdown.analyse(CONVERGE)["minions"]["db1"]


def test_waits_on_other_minions_are_found_on_every_minion():
    waits = breakdown.analyse(CONVERGE)["waits"]
    assert {(w["minion"], w["id"]): w["waits_for"] for w in waits} == {
        ("app1", "webstack-app-schema-collections-cmd-run"): "the database (the db node)",
        ("db1", "db-member"): "the Patroni cluster's leader (the other db nodes)",
        ("lb1", "lb-ca"): "the CA minion's certificate in the mine",
    }
    # A cmd.run that is not the schema step waits on nobody.
    assert "db-init" not in {w["id"] for w in waits}


def test_a_converge_across_midnight_and_times_without_microseconds():
    night = {
        "m": ret(
            st("cmd.run", "a", "23:59:50", 5000),
            st("cmd.run", "b", "00:00:05", 5000),
        )
    }
    assert breakdown.analyse(night)["minions"]["m"]["span_s"] == pytest.approx(20)


def test_a_return_without_durations_says_so():
    bare = {"lb1": {"pkg_|-a_|-a_|-installed": {"result": True, "changes": {}, "__id__": "a"}}}
    assert breakdown.analyse(bare) == {
        "timed": False,
        "reason": "no state has a start_time and a duration (1 of 1 states untimed)",
    }
    assert breakdown.analyse({})["timed"] is False
    assert breakdown.analyse(None)["reason"].startswith("no return")


def test_minions_without_times_are_named_and_the_others_still_count():
    mixed = dict(CONVERGE)
    mixed["app2"] = ["Rendering SLS 'base:webstack.app' failed"]
    mixed["lb2"] = {
        **dict([st("cmd.run", "t", "10:00:00", 1000)]),
        "cmd_|-u_|-u_|-run": {"result": True, "__id__": "u"},
    }
    run = breakdown.analyse(mixed)
    assert run["timed"]
    assert run["untimed"] == {
        "app2": "no state return (a render error?)",
        "lb2": "1 of 2 states untimed",
    }
    assert "app2" not in run["minions"] and run["minions"]["lb2"]["states"] == 1


def _slower(result, factor):
    return {
        m: {k: s | {"duration": s["duration"] * factor} for k, s in states.items()}
        for m, states in result.items()
    }


def test_across_runs_each_figure_as_stats_over_the_timed_runs():
    runs = [
        (CONVERGE, RETURNED),
        ({}, {}),  # a run whose last-apply.json was missing
        (_slower(CONVERGE, 2), {m: s * 2 for m, s in RETURNED.items()}),
        (_slower(CONVERGE, 3), {m: s * 3 for m, s in RETURNED.items()}),
    ]
    b = breakdown.across_runs(runs)
    assert (b["runs"], b["timed_runs"]) == (4, 3)
    assert b["untimed"] == ["no return (no last-apply.json, or an empty one)"]
    assert len(b["per_run"]) == 4 and b["per_run"][1]["timed"] is False
    top = b["slowest"][0]
    assert (top["minion"], top["id"]) == ("db1", "db-pkg")
    assert top["seconds"] == {"min": 30.0, "median": 60.0, "max": 90.0, "n": 3}
    assert len(b["slowest"]) == 10
    assert b["minions"]["lb1"]["packages_s"] == {"min": 12.0, "median": 24.0, "max": 36.0, "n": 3}
    path = b["critical_path"]
    assert path["last"] == {"db1": 3} and path["minion"] == "db1"
    assert path["wall_s"] == {"min": 43.0, "median": 86.0, "max": 129.0, "n": 3}
    assert [r["id"] for r in path["longest"]] == ["db-pkg", "db-member", "db-init", "db-key"]
    assert [r["id"] for r in path["waits"]] == ["db-member"]
    assert {w["minion"] for w in b["waits"]} == {"app1", "db1", "lb1"}


def test_the_minion_most_often_last_is_the_critical_path():
    app_last = {**RETURNED, "app1": 50.0}
    b = breakdown.across_runs([(CONVERGE, app_last), (CONVERGE, RETURNED), (CONVERGE, app_last)])
    assert b["critical_path"]["last"] == {"app1": 2, "db1": 1}
    assert b["critical_path"]["minion"] == "app1"
    assert b["critical_path"]["wall_s"]["median"] == 50.0
    assert [r["minion"] for r in b["critical_path"]["longest"]] == ["app1"] * 4


def test_no_timed_run_at_all():
    b = breakdown.across_runs([({}, {}), ({"lb1": ["render error"]}, {})])
    assert b["timed_runs"] == 0 and "slowest" not in b
    assert b["untimed"] == [
        "no return (no last-apply.json, or an empty one)",
        "no state has a start_time and a duration (no state return (a render error?))",
    ]


# --- results.md --------------------------------------------------------------------------------


def _converge_section(b):
    cell = report.stats([50.0])
    return {
        "apply": cell,
        "floor": cell,
        "ratio": cell,
        "reapply": {"lb1": {"seconds": cell, "changed": [0]}},
        "breakdown": b,
    }


def test_results_md_has_the_breakdown_tables():
    b = breakdown.across_runs([(CONVERGE, RETURNED), (_slower(CONVERGE, 2), RETURNED)])
    text = "\n".join(report._converge(_converge_section(b)))
    assert "(2 of 2 converge runs)" in text
    assert (
        "| `db-pkg` (pkg.installed) | db1 | webstack.db.package | 45.00 s (30.00-60.00, n=2) |"
        in text
    )
    assert "| app1 | 34.50 s (23.00-46.00, n=2) |" in text  # package installs
    assert "Critical path: the minion that returned last (db1 2x)" in text
    assert "| db1 waits for the Patroni cluster's leader (the other db nodes): `db-member`" in text
    assert "| `lb-ca` (webstack_pki.ca_certificate) | lb1 | the CA minion's certificate" in text


def test_results_md_says_when_no_run_had_durations():
    text = "\n".join(report._converge(_converge_section(breakdown.across_runs([({}, {})]))))
    assert "Where the converge's time goes: n/a, no state times in any of the 1" in text
    assert "Ten slowest" not in text


def test_results_md_of_an_older_results_json_without_a_breakdown():
    section = _converge_section(None)
    del section["breakdown"]
    assert "state.apply from bare containers" in "\n".join(report._converge(section))


# --- what the bench reads ------------------------------------------------------------------------


def test_the_bench_reads_when_each_minion_returned_from_lab_applys_lines():
    entry = {"states": 30, "changed": 28, "failed": 0, "errors": []}
    output = "\n".join(
        [
            saltcmd.progress_line("lb1", 12.34, saltcmd._counts(entry)),
            saltcmd.progress_line("db1", 143.0, saltcmd._counts(entry | {"errors": ["x"]})),
            saltcmd.progress_line("app9", 150.0, "no answer"),
            f"    lb1        {saltcmd._counts(entry)}",
        ]
    )
    assert converge.parse_returned(output) == {"lb1": 12.3, "db1": 143.0}
    # The summary lines are still what the converge's counts come from, the progress lines not.
    assert converge.parse_apply(output) == {"lb1": {"ok": True, "states": 30, "changed": 28}}


def test_the_last_return_is_read_and_a_missing_or_broken_file_is_none(tmp_path, monkeypatch):
    path = tmp_path / "last-apply.json"
    monkeypatch.setattr(converge.labctl, "LAST_APPLY", path)
    assert converge.last_return() == {}
    path.write_text("{not json")
    assert converge.last_return() == {}
    path.write_text(json.dumps(CONVERGE))
    assert converge.last_return() == CONVERGE


def test_results_md_names_the_runs_when_figures_come_from_several():
    machine = {"cpu": "x", "cpus": 2, "memory_gb": 1, "kernel": "k"}
    cell = {"min": 1.0, "median": 1.0, "max": 1.0, "n": 1}
    results = {
        "machine": machine,
        "topology": "lab.yaml",
        "finished": "2026-12-01 20:16 UTC",
        "converge": {"apply": cell, "floor": cell, "ratio": cell, "reapply": {}},
        "hop": {},  # empty: not shown, not named
        "measured": {"converge": "2026-12-01 19:50 UTC"},
        "scale": [],
    }
    lines = report.markdown(results).splitlines()
    assert not any(line.startswith("Figures from more than one run") for line in lines)
    results["scale"] = [
        {
            "spec": "lb=2,app=2,db=1",
            "nodes": 5,
            "apply_s": 1.0,
            "floor_s": 1.0,
            "ratio": 1.0,
            "reapply_all_s": 1.0,
            "reapply_changes": 0,
            "master": {"cpu_s": 1.0, "cpu_share_of_one_core": 0.1, "peak_rss_mib": 1.0},
        }
    ]
    results["measured"]["scale"] = "2026-12-01 20:10 UTC"
    text = report.markdown(results)
    assert (
        "Figures from more than one run (partial runs, `--only`): "
        "converge: 2026-12-01 19:50 UTC; scale: 2026-12-01 20:10 UTC." in text
    )


def test_job_seconds_reads_each_minions_newest_job_from_the_masters_job_cache(tmp_path):
    """The script `job_seconds` runs in the master container, run here on a job cache made the
    same way: <hash>/<jid dir>/jid, and <minion>/return.p written when the return came."""

    def job(jid, returns):
        directory = tmp_path / jid[-2:] / jid
        directory.mkdir(parents=True)
        (directory / "jid").write_text(jid + "\n")
        published = datetime.datetime.strptime(jid, "%Y%m%d%H%M%S%f").timestamp()
        for minion, seconds in returns.items():
            (directory / minion).mkdir()
            (directory / minion / "return.p").write_bytes(b"x")
            os.utime(directory / minion / "return.p", (published + seconds,) * 2)

    job("20261201100000000000", {"app1": 9.0, "lb1": 8.0})
    job("20261201100100000000", {"app1": 2.5})  # app1's newest; lb1 has no part in it
    job("20261201100200000000", {"ca": 0.5})
    script = converge.JOB_SECONDS.replace("/var/cache/salt/master/jobs", str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", script, "app1", "lb1", "db9"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = sorted(out.splitlines())
    assert lines == ["app1 20261201100100000000 2.5", "lb1 20261201100000000000 8.0"]
