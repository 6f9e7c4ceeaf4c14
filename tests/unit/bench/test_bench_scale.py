"""The scale phase's own parts: the master's sample from /proc, the sampler, the table."""

import itertools
import time

from benchkit import report, scale

# proc(5) layout: two salt-master processes (utime 100+20, stime 30+5 ticks) and their VmRSS.
SAMPLE = (
    "7 (salt-master) S 1 7 7 0 -1 4194560 2391 0 0 0 100 30 0 0 20 0 1 0 3511 40398848 3021 0\n"
    "VmRSS:\t   81920 kB\n"
    "9 (salt-master Re) S 7 7 7 0 -1 4194624 4920 0 0 0 20 5 0 0 20 0 3 0 3520 58978304 0\n"
    "VmRSS:\t   20480 kB\n"
)


def test_master_sample_adds_every_process():
    cpu, rss = scale.parse_master_sample(SAMPLE, clock_ticks=100)
    assert cpu == 1.55
    assert rss == 100.0  # MiB


def test_an_empty_sample_is_nothing():
    assert scale.parse_master_sample("", clock_ticks=100) == (0, 0)


def test_sampler_reports_cpu_used_and_the_peak_memory():
    given = []
    values = itertools.chain(
        [(10.0, 50.0), (12.0, 300.0)], ((16.0 + n, 100.0) for n in itertools.count())
    )

    def sample():
        given.append(next(values))
        return given[-1]

    with scale.MasterSampler(sample=sample, interval=0.01) as master:
        deadline = time.monotonic() + 5
        while len(given) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)  # the sampler's thread takes some while the block runs
    figures = master.figures()
    assert figures["cpu_s"] == given[-1][0] - given[0][0]  # from the first sample to the last
    assert figures["peak_rss_mib"] == 300.0  # a peak in the middle is kept
    assert 0 < figures["cpu_share_of_one_core"]


def test_scale_table_has_a_row_per_size():
    row = {
        "spec": "lb=3,app=5,db=1",
        "nodes": 9,
        "minions": 10,
        "apply_s": 120.0,
        "floor_s": 60.0,
        "ratio": 2.0,
        "reapply_all_s": 14.2,
        "reapply_slowest_job_s": 3.25,
        "reapply_changes": 0,
        "master": {"cpu_s": 30.0, "cpu_share_of_one_core": 0.25, "peak_rss_mib": 412.3},
    }
    lines = report._scale([row])
    assert lines[2] == (
        "| lb=3,app=5,db=1 | 9 | 120.0 s | 60.0 s | 2.00 x "
        "| 14.2 s, slowest job 3.25 s (changes: 0) | 30.0 s (25 % of a core) | 412 MiB |"
    )
