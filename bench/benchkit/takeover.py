"""VIP takeover after four kinds of lb failure, beside the VRRP bound, with the loss clients see."""

import threading
import time

from . import labctl
from .stream import Stream

#: How each failure is caused on the VIP holder (called directly, not through the `lab` CLI, so
#: that the clock starts within milliseconds of the failure), and how the holder is brought back.
FAILURES = {
    "hard kill": (
        lambda node, iface: labctl.lxc.stop(node, kill=True),
        ("start", "{node}"),
    ),
    "keepalived stop": (
        lambda node, iface: labctl.attach(node, "systemctl", "stop", "keepalived"),
        ("service", "{node}", "keepalived", "start"),
    ),
    "haproxy crash": (
        lambda node, iface: labctl.attach(node, "pkill", "--signal", "KILL", "--exact", "haproxy"),
        None,  # systemd restarts it after RestartSec
    ),
    "interface down": (
        lambda node, iface: labctl.attach(node, "ip", "link", "set", iface, "down"),
        ("exec", "{node}", "ip", "link", "set", "{iface}", "up"),
    ),
}


def bound(failure, profile, priority, script_interval):
    """The fastest takeover VRRP allows (RFC 3768 / 5798 timers) for the backup's ``priority``.

    Silent master (kill, interface down): Master_Down_Interval = 3 x advert + skew, skew =
    (256 - priority) / 256 x advert. A clean stop sends priority 0: the backup waits only skew.
    A crashed haproxy is noticed by the tracking (worst case one poll interval in script mode),
    then keepalived sends priority 0 as for a stop.
    """
    advert = profile["advert_int"]
    skew = (256 - priority) / 256 * advert
    if failure in ("hard kill", "interface down"):
        return 3 * advert + skew
    if failure == "keepalived stop":
        return skew
    return script_interval + skew


def _fmt(args, node, iface):
    return [a.format(node=node, iface=iface) for a in args]


def run_once(lab, failure, rate, after):
    """Cause ``failure`` on the VIP holder under a request stream; bring it back; the figures."""
    iface = lab.derived["vip"]["interface"]
    (holder,), _ = labctl.wait_for(
        lambda: len(h := labctl.vip_holders(lab)) == 1 and h, 60, what="one VIP holder"
    )
    others = {n["name"] for n in lab.derived["lb"]} - {holder}
    priorities = {n["name"]: n["priority"] for n in lab.derived["lb"]}
    cause, restore = FAILURES[failure]
    vip = labctl.vip_url(lab)
    with Stream(vip, rate=rate, max_seconds=60, context=labctl.tls_context()) as stream:
        time.sleep(2)
        # The cause runs beside the clock, not before it: `systemctl stop` returns only when
        # keepalived has exited (about 1 s after it handed the VIP over), `lxc-stop -k` when the
        # container is gone.
        failing = threading.Thread(target=cause, args=(holder, iface), daemon=True)
        started = time.monotonic()
        failing.start()
        new = None
        while time.monotonic() - started < 30:
            held = set(labctl.vip_holders(lab)) & others
            if held:
                new = sorted(held)[0]
                break
            time.sleep(0.02)
        seconds = time.monotonic() - started if new else None
        failing.join(timeout=60)
        time.sleep(after)
    if restore:
        labctl.lab_cmd(*_fmt(restore, holder, iface))
    return {
        "failure": failure,
        "from": holder,
        "to": new,
        "takeover_s": round(seconds, 3) if seconds is not None else None,
        "backup_priority": priorities.get(new) if new else max(priorities[o] for o in others),
        **stream.summary(),
    }


def wait_settled(lab, apps, timeout=120):
    """One VIP holder, haproxy up on every lb, and every app serving through the VIP (https,
    verified against the site CA)."""
    import json
    import urllib.request

    labctl.wait_for(lambda: len(labctl.vip_holders(lab)) == 1, timeout, what="one VIP holder")
    for lb in (n["name"] for n in lab.derived["lb"]):
        labctl.wait_for(
            lambda lb=lb: (
                labctl.attach(lb, "systemctl", "is-active", "haproxy", check=False).strip()
                == "active"
            ),
            timeout,
            what=f"haproxy on {lb}",
        )

    last = {}
    url = labctl.vip_url(lab) + "api/whoami"
    context = labctl.tls_context()

    def serving():
        seen = set()
        for _ in range(10):
            try:
                # https://VIP only (the lab's address)
                with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
                    seen.add(json.load(response)["node"])
            except OSError as exc:  # an app not serving (yet): the wait goes on
                last["error"] = exc
        return seen >= set(apps)

    try:
        labctl.wait_for(serving, timeout, interval=1, what="every app serving through the VIP")
    except RuntimeError as exc:
        raise RuntimeError(f"{exc} (last error: {last.get('error')!r})") from exc
    time.sleep(2)
