"""What the lab and the tests need from the host: the one package list and what it must provide.

``scripts/host-packages.txt`` is the one list of Debian packages (read here for ``lab up`` and by
``scripts/bootstrap-dev`` for ``make test``). :data:`HOST_FILES` and :data:`HOST_COMMANDS` declare
what the lab and the tests use on the host; tests/unit/lab/test_host_packages.py checks that every
one is owned by a package the list names (or an Essential one), and that the commands in the lab's
own ``sh([...])`` calls are all declared here; tests/functional/lab/test_host_packages_chroot.py
installs the list into a bare debootstrap and checks that every one of them is there.
"""

from .config import REPO, SUITE

PACKAGES_FILE = REPO / "scripts" / "host-packages.txt"


def read_packages(path=PACKAGES_FILE):
    """The package names in ``path``: one a line, ``#`` to the end of a line is a comment (the
    same parsing as scripts/bootstrap-dev's)."""
    names = []
    for raw in path.read_text().splitlines():
        names += [name for name in raw.split("#", 1)[0].split() if name not in names]
    return tuple(names)


#: Every container config includes it (lxc.py); shipped by lxc-templates, only a Recommends of lxc.
LXC_INCLUDE = "/usr/share/lxc/config/debian.common.conf"

#: Absolute host paths the lab and the tests read, or write into LXC configs: path -> who uses it.
HOST_FILES = {
    LXC_INCLUDE: "lxc.py: lxc.include of every container config",
    f"/usr/share/debootstrap/scripts/{SUITE}": "template.py: debootstrap of the node template",
    "/usr/lib/apt-cacher-ng": "proxy.py: apt-cacher-ng's SupportDir",
    "/usr/bin/python3": "wheelhouse.py: the Salt wheelhouse is built with Debian's python3",
    "/usr/lib/python3.11/ensurepip/__init__.py": "python3 -m venv (wheelhouse.py, bootstrap-dev)",
    "/usr/include/python3.11/Python.h": "pip wheel: timelib's C extension",
    "/usr/include/stdio.h": "pip wheel: gcc compiling timelib",
    "/usr/lib/postgresql/15/bin/postgres": "tests/support: loopback PostgreSQL and Patroni",
    "/usr/lib/postgresql/15/bin/initdb": "tests/support/loopback_postgres.py",
    "/usr/lib/postgresql/15/bin/psql": "tests/support: SQL on the loopback clusters; tests/e2e:"
    " the intruder's logins (in its network namespace)",
    "/etc/nginx/mime.types": "salt/webstack/app/files/nginx-check-site includes it",
    "/usr/lib/python3/dist-packages/supervisor/options.py": "supervisor-check-program imports it",
}

#: Commands the lab, its scripts and the tests run on the host: name -> who runs it.
HOST_COMMANDS = {
    # lab/labkit
    "apt-get": "host.py: installs this list",
    "dpkg-query": "host.py: what of this list is missing",
    "ip": "net.py, down.py: the bridge and veths; tests: network namespaces",
    "apt-cacher-ng": "proxy.py: the apt proxy",
    "debootstrap": "template.py: the node template",
    "chroot": "template.py, bootstrap/install-salt --root",
    "mountpoint": "template.py, bootstrap/install-salt: /proc in the chroot",
    "mount": "bootstrap/install-salt: /proc in the chroot; tests: the config-check sandbox",
    "umount": "template.py, bootstrap/install-salt",
    "env": "bootstrap/install-salt: env -i for the chroot",
    "cp": "bootstrap/install-salt: the wheelhouse into the chroot; the host-check test",
    "lxc-start": "lxc.py",
    "lxc-stop": "lxc.py",
    "lxc-info": "lxc.py",
    "lxc-attach": "lxc.py",
    "lxc-freeze": "lxc.py",
    "lxc-unfreeze": "lxc.py",
    "nsenter": "lxc.py, intruder.py: host tools in a node's (the intruder's) network namespace",
    "gcc": "pip wheel (wheelhouse.py, bootstrap-dev): timelib",
    # make, scripts/lint, scripts/bootstrap-dev
    "make": "make lab, make test",
    "bash": "scripts/*, bootstrap/*",
    "git": "scripts/lint: git ls-files",
    "shellcheck": "scripts/lint, tests/functional/bootstrap",
    "ruby": "scripts/lint: ruby -wc Vagrantfile",
    "sha256sum": "scripts/bootstrap-dev: the wheelhouse key",
    "xargs": "scripts/lint",
    # the tests
    "sh": "tests: the config-check sandbox, the salt helper scripts",
    "unshare": "tests/functional/state_tree: the config-check sandbox; patroni-check-config",
    "haproxy": "tests/functional/modules, config checks",
    "keepalived": "tests/functional/modules (in netns), config checks",
    "nginx": "nginx-check-site (config checks)",
    "arping": "tests/functional/modules: the VIP's gratuitous ARP",
    "supervisord": "tests/functional/states: the webstack_app.program_running state",
    "patroni": "tests/support/patroni_cluster.py, patroni-check-config",
    "etcd": "tests/support/patroni_cluster.py",
    "vagrant": "tests/functional/vagrant: vagrant validate",
    "wrk": "bench/benchkit/hop.py, tests/functional/bench",
    "tcpdump": "tests/e2e/test_e2e_capture.py: full-packet captures of the lab bridge",
    "timeout": "tests/e2e/test_e2e_capture.py: a bound on tcpdump",
}
