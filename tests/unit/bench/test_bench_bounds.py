"""The VRRP bounds the takeover figures are compared with (RFC 3768 / RFC 5798 timers)."""

import pytest
from benchkit import converge, report, takeover

DEFAULT = {"version": 2, "advert_int": 1}
FAST = {"version": 3, "advert_int": 0.1}


@pytest.mark.parametrize(
    ("failure", "profile", "priority", "expected"),
    [
        # Master_Down_Interval = 3 x advert + (256 - priority) / 256 x advert
        ("hard kill", DEFAULT, 190, 3 + 66 / 256),
        ("interface down", FAST, 190, 0.3 + 6.6 / 256),
        # priority-0 advert: only the skew
        ("keepalived stop", DEFAULT, 200, 56 / 256),
        # one tracking poll, then as a stop
        ("haproxy crash", DEFAULT, 190, 1 + 66 / 256),
    ],
)
def test_bound(failure, profile, priority, expected):
    assert takeover.bound(failure, profile, priority, script_interval=1) == pytest.approx(expected)


def test_a_higher_backup_priority_takes_over_sooner():
    assert takeover.bound("hard kill", DEFAULT, 250, 1) < takeover.bound(
        "hard kill", DEFAULT, 100, 1
    )


def test_every_failure_has_a_bound():
    for failure in takeover.FAILURES:
        assert takeover.bound(failure, FAST, 190, 1) > 0


def test_stats_and_apply_lines():
    assert report.stats([3, 1, 2, None]) == {"min": 1, "median": 2, "max": 3, "n": 3}
    assert report.stats([None]) is None
    out = (
        "    app1       ok     states=29 changed=0 failed=0\n"
        "    db1        FAILED states=8 changed=2 failed=1\n"
    )
    assert converge.parse_apply(out) == {
        "app1": {"ok": True, "states": 29, "changed": 0},
        "db1": {"ok": False, "states": 8, "changed": 2},
    }


def test_floor_installs_what_the_states_install():
    packages = converge.role_packages()
    assert {"haproxy", "keepalived"} <= set(packages["lb"])
    assert "nginx-light" in packages["app"] and "postgresql" in packages["db"]
