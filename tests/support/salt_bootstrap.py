"""The bootstrap scripts (bootstrap/) the Vagrant VMs and the LXC lab share: running one, and the
Salt config they must write (what the lab wrote before it used them, lab/labkit/cluster.py
master_config and minion_config: the scripts keep it, key for key)."""

import os
import stat
import subprocess

from support.state_tree import REPO

BOOTSTRAP = REPO / "bootstrap"


def run_script(script, *args, check=True):
    """``bootstrap/SCRIPT ARGS``, output captured; with ``check`` a failure fails the test."""
    proc = subprocess.run(
        [BOOTSTRAP / script, *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def master_config(interface, worker_threads):
    """``/etc/salt/master.d/webstack.conf`` of a master listening on ``interface`` with
    ``worker_threads`` request workers."""
    return {
        "interface": interface,
        "auto_accept": False,
        "file_roots": {"base": ["/srv/webstack/salt", "/srv/webstack-site/files"]},
        "pillar_roots": {"base": ["/srv/webstack/pillar", "/srv/webstack-site"]},
        "runner_dirs": ["/srv/webstack/_runners"],
        "utils_dirs": ["/srv/webstack/_utils"],
        "worker_threads": worker_threads,
        # Minions ask the site CA's minion to sign their certificates through the master.
        "peer": {".*": ["x509.sign_remote_certificate"]},
        "timeout": 15,
        "gather_job_timeout": 30,
        # A peer publish's own publish, stuck behind a held worker, is retried after 5 s.
        "publish_timeout": 5,
        "log_level_logfile": "info",
    }


def minion_config(minion_id, master):
    """``/etc/salt/minion.d/webstack.conf`` of minion ``minion_id`` of ``master`` (an address)."""
    return {
        "id": minion_id,
        "master": master,
        "enable_fqdns_grains": False,
        "acceptance_wait_time": 2,
        "acceptance_wait_time_max": 5,
        "random_reauth_delay": 0,
        "autoload_dynamic_modules": False,
        "log_level_logfile": "info",
    }
