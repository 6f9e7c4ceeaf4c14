"""`lab` command line: up, down, status, salt, apply, and chaos actions on nodes."""

import argparse
import contextlib
import fcntl
import sys

from . import (
    cluster,
    config,
    health,
    host,
    intruder,
    lxc,
    net,
    pki,
    proxy,
    saltcmd,
    sitedir,
    template,
    wheelhouse,
)
from . import down as teardown
from .run import LabError, say, step, warn

LOCK = "/run/webstack-lab.lock"


@contextlib.contextmanager
def locked():
    """One lab command that changes things at a time (a second `up` waits for the first)."""
    with open(LOCK, "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _lab(args, reread=False):
    """The running lab (its saved state) or, with none, the topology asked for; a --topology,
    --nodes, $LAB_TOPOLOGY or $LAB_NODES that differs from the running lab's is an error."""
    return config.load(args.topology, args.nodes, env=True, reread=reread)


def cmd_up(args):
    # reread: converging a running lab needs its file unchanged (the site dir is written from it)
    lab = _lab(args, reread=True)
    ok = False
    try:
        with step("host packages"):
            host.ensure_packages()
        with step("bridge"):
            config.save_state(lab)
            net.bridge_up(lab)
        with step("apt proxy"):
            proxy.start(lab)
        with step("salt wheelhouse"):
            wheels = wheelhouse.ensure()
        with step("node template"):
            tmpl = template.ensure(lab, wheels)
        with step("site dir"):
            cluster.check_tree()
            sitedir.ensure(lab)
        with step("minion keys"):
            pairs = pki.ensure([config.MASTER_NAME, *lab.minions], tmpl)
        with step("containers"):
            cluster.ensure_containers(lab, tmpl, pairs)
            for old in template.prune(tmpl):
                say(f"    removed old template {old}")
        with step("minions answer"):
            saltcmd.wait_minions(lab)
        with step("saltutil.sync_all"):
            saltcmd.sync_all(lab)
        if args.no_apply:
            ok = True
            return 0
        with step("state.apply"):
            applied, _ = saltcmd.apply(lab)
            if not applied:
                raise LabError("state.apply failed (see above)")
        with step("healthy"):
            health.wait_healthy(lab)
        ok = True
        return 0
    finally:
        health.summary(lab)
        say("lab is up" if ok else "lab up FAILED")


def cmd_down(_args):
    # from the saved state alone, whatever --topology/LAB_TOPOLOGY say (no PyYAML needed)
    with step("down"):
        teardown.down()
    return 0


def _running_lab(args):
    lab = _lab(args)
    if lxc.state(config.MASTER_NAME) != "RUNNING":
        raise LabError("the lab's salt-master is not running: run `lab up` first")
    return lab


def cmd_status(args):
    lab = _lab(args)
    for line in health.node_table(lab):
        say(line)
    vip, stats = health.urls(lab)
    say(f"VIP {vip} held by: {', '.join(health.vip_holders(lab)) or 'nobody'}  stats {stats}")
    if lxc.state(config.MASTER_NAME) != "RUNNING":
        warn("salt-master not running")
        return 1
    return lxc.attach_passthrough(config.MASTER_NAME, "salt-run", "webstack.status", *args.args)


def cmd_salt(args):
    _running_lab(args)
    return lxc.attach_passthrough(config.MASTER_NAME, "salt", *args.args)


def cmd_run(args):
    """`lab run salt-run …`, `lab run salt-key -L`: any command on the master."""
    _running_lab(args)
    return lxc.attach_passthrough(config.MASTER_NAME, *args.args)


def cmd_exec(args):
    lab = _lab(args)
    lab.node(args.node)
    return lxc.attach_passthrough(args.node, *args.args)


def cmd_apply(args):
    lab = _running_lab(args)
    if saltcmd.extension_digest() != saltcmd.synced_digest():
        with step("saltutil.sync_all (custom modules changed)"):
            saltcmd.sync_all(lab)
    with step(f"state.apply {args.target}"):
        ok, _ = saltcmd.apply(lab, args.target)
    return 0 if ok else 1


def cmd_chaos(args):
    lab = _lab(args)
    node = lab.node(args.node).name
    with step(f"{args.command} {node}"):
        if args.command == "kill":
            lxc.stop(node, kill=True)
        elif args.command == "stop":
            lxc.stop(node)
        elif args.command == "start":
            cluster.start([node], lab)
        elif args.command == "freeze":
            lxc.freeze(node)
        elif args.command == "thaw":
            lxc.unfreeze(node)
    say(f"{node}: {lxc.state(node)}")
    return 0


def cmd_service(args):
    lab = _lab(args)
    node = lab.node(args.node).name
    with step(f"{args.action} {args.service} on {node}"):
        proc = lxc.attach(node, "systemctl", args.action, args.service, check=False, capture=False)
    return proc.returncode


def cmd_intruder(args):
    """`lab intruder up|down|status`: a container on the bridge with no role (attack tests)."""
    lab = _lab(args)
    if args.action == "up":
        with step("intruder up"):
            where = intruder.up(lab)
        say(f"{intruder.NAME}: {lxc.state(intruder.NAME)} at {where} (no role, no Salt minion)")
    elif args.action == "down":
        with step("intruder down"):
            removed = intruder.down()
        say(f"{intruder.NAME}: {'removed' if removed else 'none here'}")
    else:
        state, where, pid = intruder.status(lab)
        say(f"{intruder.NAME}: {state} at {where}" + (f" (init pid {pid})" if pid else ""))
        return 0 if state == "RUNNING" else 1
    return 0


def parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--topology",
        default=argparse.SUPPRESS,
        help="topology file (default: the running lab's, else $LAB_TOPOLOGY or topology/lab.yaml);"
        " one that differs from the running lab's is an error",
    )
    common.add_argument(
        "--nodes",
        default=argparse.SUPPRESS,
        help="other node counts, e.g. app=3 or lb=3,app=3,db=1 (default: the running lab's,"
        " else $LAB_NODES or the file's)",
    )
    p = argparse.ArgumentParser(
        prog="lab",
        description="The webstack stack on one machine, as LXC containers.",
        parents=[common],
    )
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        parents=[common],
        name="up",
        help="build (from caches) and start the lab, apply the states; converges",
    )
    up.add_argument(
        "--no-apply", action="store_true", help="stop once the Salt cluster answers and is synced"
    )
    up.set_defaults(func=cmd_up, lock=True)
    sub.add_parser(
        parents=[common], name="down", help="remove everything the lab made (caches stay)"
    ).set_defaults(func=cmd_down, lock=True)
    status = sub.add_parser(
        parents=[common], name="status", help="the nodes, then salt-run webstack.status"
    )
    status.add_argument("args", nargs=argparse.REMAINDER)
    status.set_defaults(func=cmd_status)
    salt = sub.add_parser("salt", help="salt ARGS... on the master", prefix_chars="\0")
    salt.add_argument("args", nargs=argparse.REMAINDER)
    salt.set_defaults(func=cmd_salt)
    run = sub.add_parser(
        "run", help="any command on the master (salt-run, salt-key, ...)", prefix_chars="\0"
    )
    run.add_argument("args", nargs=argparse.REMAINDER)
    run.set_defaults(func=cmd_run)
    exe = sub.add_parser("exec", help="a command inside a node", prefix_chars="\0")
    exe.add_argument("node")
    exe.add_argument("args", nargs=argparse.REMAINDER)
    exe.set_defaults(func=cmd_exec)
    apply = sub.add_parser(
        parents=[common],
        name="apply",
        help="state.apply from the master; non-zero when a state fails",
    )
    apply.add_argument("target", nargs="?", default="*")
    apply.set_defaults(func=cmd_apply)
    for action, text in (
        ("kill", "hard-kill a node (lxc-stop -k)"),
        ("stop", "stop a node cleanly"),
        ("start", "start a node and wait for its boot"),
        ("freeze", "freeze a node (its processes stop, its network stays)"),
        ("thaw", "thaw a frozen node"),
    ):
        chaos = sub.add_parser(parents=[common], name=action, help=text)
        chaos.add_argument("node")
        chaos.set_defaults(func=cmd_chaos)
    service = sub.add_parser(
        parents=[common], name="service", help="stop/start/restart a service on a node"
    )
    service.add_argument("node")
    service.add_argument("service")
    service.add_argument("action", choices=("stop", "start", "restart"))
    service.set_defaults(func=cmd_service)
    intr = sub.add_parser(
        parents=[common],
        name="intruder",
        help="a container on the lab bridge with no role and no Salt minion (attack tests)",
    )
    intr.add_argument("action", choices=("up", "down", "status"))
    intr.set_defaults(func=cmd_intruder, lock=True)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    args.topology = getattr(args, "topology", None)
    args.nodes = getattr(args, "nodes", None)
    try:
        if getattr(args, "lock", False):
            with locked():
                return args.func(args)
        return args.func(args)
    except LabError as exc:
        warn(str(exc))
        return 1
    except KeyboardInterrupt:
        warn("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
