"""The lab's containers: the salt-master (repo and site dir mounted read-only), one per node."""

import secrets

from . import lxc, net, pki
from .config import MASTER_NAME, REPO, SITE, digest
from .run import say, sh, wait_for, warn

#: The Salt side of a container (config drop-in, preseeded keys) is written by the scripts the
#: Vagrant VMs run (``--root`` = the container's overlay upper dir, before its first start).
CONFIGURE_MASTER = REPO / "bootstrap" / "configure-master"
CONFIGURE_MINION = REPO / "bootstrap" / "configure-minion"


def configure_command(lab, node, minions=()):
    """The bootstrap script and its arguments that set up ``node``'s salt-master or salt-minion.

    ``minions``: the ids the master accepts (their public keys are preseeded, no auto-accept).
    """
    if node.name == MASTER_NAME:
        accept = [arg for minion in minions for arg in ("--accept", minion)]
        return [CONFIGURE_MASTER, "--interface", lab.master.address, *accept]
    return [CONFIGURE_MINION, "--id", node.name, "--master", lab.master.address]


def ca_minion_command(lab):
    """The master container's own salt-minion: the site CA (webstack.pki.ca)."""
    return [CONFIGURE_MINION, "--id", lab.ca_minion, "--master", lab.master.address]


def _hosts(lab):
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    lines += [f"{c.address} {c.name}" for c in lab.containers]
    return "\n".join(lines) + "\n"


def _seed(lab, node, pairs):
    """Files a new container gets in its overlay upper dir before its first start.

    ``pairs`` has every minion's key pair and the master's own (under the master's name): the
    master's key is preseeded too, so a recreated master keeps the identity its minions cached.
    The key files themselves are read by the bootstrap scripts from :data:`pki.KEYS`.
    """
    name = node.name
    lxc.put(name, "etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
    lxc.put(name, "etc/hostname", name + "\n")
    lxc.put(name, "etc/hosts", _hosts(lab))
    lxc.put(name, "etc/apt/apt.conf.d/01lab-proxy", f'Acquire::http::Proxy "{lab.proxy_url}";\n')
    command = configure_command(lab, node, _minions(pairs))
    sh([*command, "--root", lxc.delta(name), "--keys", pki.KEYS], quiet=True)
    if name == MASTER_NAME:
        # The template has both units and enables the minion; the master runs both: its minion
        # is the site CA.
        sh([*ca_minion_command(lab), "--root", lxc.delta(name), "--keys", pki.KEYS], quiet=True)
        lxc.symlink(
            name,
            "etc/systemd/system/multi-user.target.wants/salt-master.service",
            "/usr/lib/systemd/system/salt-master.service",
        )


def _seed_marker(lab, node):
    """A line for the LXC config naming what `_seed` wrote: a changed Salt config recreates a node.

    (/etc/hosts is left out: a node added to the topology does not recreate every other node;
    so are the accepted minions, which `sync_master_keys` keeps current on a running master.)
    """
    script, *args = configure_command(lab, node)
    if node.name == MASTER_NAME:
        args += ca_minion_command(lab)[1:]
    return f"# lab seed: {digest(script, ' '.join(args), lab.proxy_url)}\n"


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
    for name in ("_modules", "_states", "_runners", "_utils"):
        if not (REPO / "salt" / name).exists():
            warn(f"salt/{name} is missing: saltutil.sync_all will not see ../{name}")
