"""The lab's containers: the salt-master (repo and site dir mounted read-only), one per node."""

import json
import secrets

from . import lxc, net
from .config import MASTER_NAME, REPO, SITE, digest
from .run import say, wait_for, warn

# JSON is YAML: Salt reads these as it reads any config file.
MASTER_CONF = "/etc/salt/master.d/lab.conf"
MINION_CONF = "/etc/salt/minion.d/lab.conf"


def master_config(lab):
    return {
        "interface": lab.master.address,
        "auto_accept": False,
        "file_roots": {"base": ["/srv/webstack/salt", "/srv/webstack-site/files"]},
        "pillar_roots": {"base": ["/srv/webstack/pillar", "/srv/webstack-site"]},
        "runner_dirs": ["/srv/webstack/_runners"],
        "worker_threads": 4,
        "timeout": 15,
        "gather_job_timeout": 30,
        "log_level_logfile": "info",
    }


def minion_config(lab, node):
    return {
        "id": node.name,
        "master": lab.master.address,
        "enable_fqdns_grains": False,
        "acceptance_wait_time": 2,
        "acceptance_wait_time_max": 5,
        "random_reauth_delay": 0,
        "log_level_logfile": "info",
    }


def _hosts(lab):
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{c.address} {c.name}" for c in lab.containers]
    return "\n".join(lines) + "\n"


def _seed(lab, node, pairs):
    """Files a new container gets in its overlay upper dir before its first start.

    ``pairs`` has every minion's key pair and the master's own (under the master's name): the
    master's key is preseeded too, so a recreated master keeps the identity its minions cached.
    """
    name = node.name
    master_pem, master_pub = pairs[MASTER_NAME]
    lxc.put(name, "etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
    lxc.put(name, "etc/hostname", name + "\n")
    lxc.put(name, "etc/hosts", _hosts(lab))
    lxc.put(name, "etc/apt/apt.conf.d/01lab-proxy", f'Acquire::http::Proxy "{lab.proxy_url}";\n')
    if name == MASTER_NAME:
        lxc.put(name, MASTER_CONF, json.dumps(master_config(lab), indent=2))
        lxc.symlink(name, "etc/systemd/system/salt-minion.service", "/dev/null")
        lxc.symlink(
            name,
            "etc/systemd/system/multi-user.target.wants/salt-master.service",
            "/usr/lib/systemd/system/salt-master.service",
        )
        lxc.put(name, "etc/salt/pki/master/master.pem", master_pem, 0o400)
        lxc.put(name, "etc/salt/pki/master/master.pub", master_pub)
        for minion, (_, pub) in _minions(pairs).items():
            lxc.put(name, f"etc/salt/pki/master/minions/{minion}", pub)
    else:
        pem, pub = pairs[name]
        lxc.put(name, MINION_CONF, json.dumps(minion_config(lab, node), indent=2))
        lxc.put(name, "etc/salt/pki/minion/minion.pem", pem, 0o400)
        lxc.put(name, "etc/salt/pki/minion/minion.pub", pub)
        lxc.put(name, "etc/salt/pki/minion/minion_master.pub", master_pub)


def _seed_marker(lab, node):
    """A line for the LXC config naming what `_seed` wrote: a changed Salt config recreates a node.

    (/etc/hosts is left out: a node added to the topology does not recreate every other node.)
    """
    seed = master_config(lab) if node.name == MASTER_NAME else minion_config(lab, node)
    return f"# lab seed: {digest(json.dumps(seed, sort_keys=True), lab.proxy_url)}\n"


def _minions(pairs):
    return {k: v for k, v in pairs.items() if k != MASTER_NAME}


def _mounts(node):
    if node.name != MASTER_NAME:
        return ()
    return ((REPO, "/srv/webstack"), (SITE, "/srv/webstack-site"))


def prune(lab):
    """Remove containers that are no longer in the topology (e.g. after choosing a smaller one)."""
    wanted = {c.name for c in lab.containers}
    removed = [name for name in lxc.names() if name not in wanted]
    for name in removed:
        lxc.destroy(name)
    return removed


def create(lab, template, pairs):
    """Create missing containers (recreate those whose config changed); return their names."""
    created = []
    for node in lab.containers:
        text = lxc.config_text(lab, node, template, _mounts(node)) + _seed_marker(lab, node)
        config = lxc.cdir(node.name) / "config"
        if lxc.exists(node.name) and config.read_text() == text:
            continue
        if lxc.exists(node.name):
            say(f"    {node.name}: config changed, recreating")
            lxc.destroy(node.name)
        lxc.write_config(node.name, text)
        _seed(lab, node, pairs)
        created.append(node.name)
    return created


def start(names, lab):
    """Start (or thaw) the given containers and wait until systemd inside has booted."""
    for name in names:
        current = lxc.state(name)
        if current == "FROZEN":
            lxc.unfreeze(name)
        elif current == "STOPPED":
            lxc.start(name)
    for name in names:
        lxc.wait_booted(name)
    if MASTER_NAME in names:
        wait_for(
            lambda: net.tcp_open(lab.master.address, 4506), 60, what="salt-master on port 4506"
        )


def sync_master_keys(lab, pairs):
    """A running master accepts exactly the topology's minions (preseeded, no auto-accept)."""
    base = "/etc/salt/pki/master/minions"
    listed = lxc.attach(MASTER_NAME, "ls", "-1", base, capture=True).split()
    minions = _minions(pairs)
    for minion, (_, pub) in minions.items():
        current = lxc.attach(MASTER_NAME, "cat", f"{base}/{minion}", check=False, capture=True)
        if current != pub:
            lxc.attach(MASTER_NAME, "sh", "-c", f"umask 022; cat > {base}/{minion}", stdin=pub)
    for extra in sorted(set(listed) - set(minions)):
        lxc.attach(MASTER_NAME, "salt-key", "-y", "-d", extra, capture=True)


def ensure_containers(lab, template, pairs):
    removed = prune(lab)
    if removed:
        say(f"    removed (not in the topology): {', '.join(removed)}")
    created = create(lab, template, pairs)
    start([MASTER_NAME], lab)
    sync_master_keys(lab, pairs)
    start([n.name for n in lab.nodes], lab)
    running = ", ".join(c.name for c in lab.containers)
    say(f"    created: {', '.join(created) or 'none'}; running: {running}")


def check_tree():
    """The master mounts the repo: say early when salt/ lacks a link to a custom module folder."""
    for name in ("_modules", "_states", "_runners"):
        if not (REPO / "salt" / name).exists():
            warn(f"salt/{name} is missing: saltutil.sync_all will not see ../{name}")
