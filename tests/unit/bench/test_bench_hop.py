"""The hop's own figures: wrk's request count, and a process's CPU seconds from /proc."""

from benchkit import hop

# In the shape wrk 4.1.0 (Debian 12) prints with --latency.
WRK_OUTPUT = """Running 10s test @ http://10.77.0.100/api/whoami
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.52ms   12.11ms 119.24ms   91.62%
    Req/Sec     0.80k   156.33     1.17k    70.50%
  Latency Distribution
     50%    6.80ms
     75%    9.21ms
     90%   16.45ms
     99%   70.13ms
  15893 requests in 10.01s, 4.41MB read
Requests/sec:   1587.67
Transfer/sec:    450.93KB
"""

# /proc/PID/stat lines in proc(5)'s layout: a master and a worker, the second one's command name
# with a space and a ')' in it, as a process may name itself.
PROC_STAT = (
    "201 (haproxy) S 1 201 201 0 -1 4194560 2391 0 0 0 12 7 0 0 20 0 1 0 3511 40398848 3021 "
    "18446744073709551615 1 1 0 0 0 0 0 4096 83520 0 0 0 17 1 0 0 0 0 0\n"
    "203 (hap roxy) x) S 201 201 201 0 -1 4194624 4920 0 0 0 230 114 0 0 20 0 3 0 3520 "
    "58978304 4501 18446744073709551615 1 1 0 0 0 0 0 4096 83520 0 0 0 17 0 0 0 0 0 0\n"
)


def test_wrk_output_gives_its_request_count():
    figures = hop.parse_wrk(WRK_OUTPUT)
    assert figures["requests"] == 15893
    assert figures["requests_per_s"] == 1587.67
    assert figures["p50_ms"] == 6.8


def test_cpu_seconds_add_user_and_system_time_of_every_process():
    seconds = hop.parse_proc_stat(PROC_STAT)
    assert seconds == (12 + 7 + 230 + 114) / hop.CLOCK_TICKS


def test_no_process_uses_no_cpu():
    assert hop.parse_proc_stat("") == 0
    assert hop.cpu_seconds(lambda *a, **k: "", "lb1") == 0
