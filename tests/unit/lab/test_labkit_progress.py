"""Salt's per-minion JSON stream read as it comes: the parser (fed the lines the salt CLI prints,
made by Salt's own JSON outputter) and the runner (a real process in place of `lxc-attach salt`)."""

import json
import sys
import time

from labkit import progress
from support.salt_cli_stream import document, no_return, salt_cli, state

LB1 = {"pkg_|-a_|-a_|-installed": state("a", "webstack.lb.package")}
DB1 = {
    "cmd_|-b_|-b_|-run": state(
        "b", "webstack.db", result=False, comment='exit 1: "{" and "}" and \\ in a comment {'
    )
}


def feed_lines(parser, text):
    """Each line of ``text`` fed on its own: [(line number, pairs it completed)]."""
    return [
        (n, pairs) for n, line in enumerate(text.splitlines(True)) if (pairs := parser.feed(line))
    ]


# --- the parser ----------------------------------------------------------------------------------


def test_each_return_comes_back_on_the_line_that_closes_its_document():
    first, second = document("lb1", LB1), document("db1", DB1)
    done = feed_lines(progress.ReturnStream(), first + second)
    first_lines = len(first.splitlines())
    assert done == [
        (first_lines - 1, [("lb1", LB1)]),
        (first_lines + len(second.splitlines()) - 1, [("db1", DB1)]),
    ]


def test_braces_and_quotes_inside_strings_are_not_structure():
    comment = '} "}" \\"{ {{ \\\\'
    ret = {"x_|-y_|-z_|-run": state("y", "s", comment=comment)}
    parser = progress.ReturnStream()
    assert [p for _, p in feed_lines(parser, document("app1", ret))] == [[("app1", ret)]]
    assert parser.noise == []


def test_one_line_documents_and_two_on_one_line():
    parser = progress.ReturnStream()
    line = json.dumps({"lb1": LB1}) + json.dumps({"db1": DB1}) + "\n"
    assert parser.feed(json.dumps({"ca": {}}) + "\n") == [("ca", {})]
    assert parser.feed(line) == [("lb1", LB1), ("db1", DB1)]


def test_text_between_documents_is_noise_not_a_return():
    parser = progress.ReturnStream()
    text = "[WARNING ] a {braced} warning\n" + document("lb1", LB1) + "\n  \nstray text\n"
    assert [p for _, p in feed_lines(parser, text)] == [[("lb1", LB1)]]
    assert parser.noise == ["[WARNING ] a {braced} warning", "stray text"]


def test_a_broken_document_is_noise_and_the_next_one_still_parses():
    parser = progress.ReturnStream()
    text = '{"lb1": {"a": tru}}\n' + document("db1", DB1)
    assert [p for _, p in feed_lines(parser, text)] == [[("db1", DB1)]]
    assert parser.noise == ['{"lb1": {"a": tru}}']


def test_a_document_cut_off_at_the_end_is_unfinished():
    parser = progress.ReturnStream()
    text = document("lb1", LB1) + document("db1", DB1)[:-20]
    assert [p for _, p in feed_lines(parser, text)] == [[("lb1", LB1)]]
    parser.close()
    assert parser.unfinished == 1


def test_the_placeholder_of_a_minion_that_did_not_answer():
    [(minion, ret)] = progress.ReturnStream().feed(no_return("db2").replace("\n    ", ""))
    assert minion == "db2" and progress.did_not_return(ret)
    assert not progress.did_not_return(LB1)
    assert not progress.did_not_return(["a render error"])


# --- the runner ----------------------------------------------------------------------------------


def test_each_return_is_yielded_as_it_arrives_not_at_the_end():
    run = progress.SaltStream(
        salt_cli(document("lb1", LB1), 1.0, document("db1", DB1)), kill_after=30
    )
    seen = []
    for minion, ret, seconds in run:
        seen.append((minion, ret, seconds, time.monotonic()))
    assert [(m, r) for m, r, _, _ in seen] == [("lb1", LB1), ("db1", DB1)]
    (_, _, first, first_at), (_, _, second, second_at) = seen
    assert first < 0.9 <= second - first  # lb1 came a second before db1 (the pause between)
    assert second_at - first_at >= 0.9  # and the loop had it then, not only once db1 was in
    assert run.returncode == 0 and not run.killed


def test_a_command_past_its_deadline_is_killed_and_what_came_back_stands():
    run = progress.SaltStream(salt_cli(document("lb1", LB1), 60), kill_after=1)
    started = time.monotonic()
    assert [m for m, _, _ in run] == ["lb1"]
    assert run.killed and time.monotonic() - started < 10


def test_the_deadline_holds_when_a_process_left_behind_keeps_the_pipe_open():
    # lxc-attach killed leaves the command inside running with its stdout: here a child that
    # inherited the pipe goes on (and prints) after its parent is killed.
    child = salt_cli(0.5, document("late", LB1), 4)
    parent = [
        sys.executable,
        "-c",
        f"import subprocess, time; subprocess.Popen({child!r}); time.sleep(60)",
    ]
    run = progress.SaltStream(parent, kill_after=1.5)
    started = time.monotonic()
    returned = [m for m, _, _ in run]
    assert run.killed and time.monotonic() - started < 3.5
    assert returned == ["late"]  # what the child printed before the deadline is read


def test_a_full_stderr_does_not_stall_the_command_and_is_kept():
    said = "\nERROR: Minions returned with non-zero exit code\n"
    argv = salt_cli(document("lb1", LB1), stderr=said, stderr_fill=1_000_000)  # > a pipe's 64 KiB
    run = progress.SaltStream(argv, kill_after=30)
    assert [m for m, _, _ in run] == ["lb1"]
    assert not run.killed
    assert run.stderr.endswith("ERROR: Minions returned with non-zero exit code\n")
