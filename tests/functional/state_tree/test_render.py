"""
Render the whole state tree for topologies of 1, 2, 3 and 5 nodes per role and check what was
derived from the topology: haproxy servers, keepalived priorities and peers, pg_hba, the app's
database URI, and that no rendered file holds an address the topology does not name.
"""

import json
import re

import pymongo
import pytest
import yaml
from support.state_tree import SECRETS, make_topology

SIZES = [1, 2, 3, 5]
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


def nodes_with(topology, role):
    return [n for n in topology["nodes"] if role in n["roles"]]


def allowed_addresses(topology):
    return {n["address"] for n in topology["nodes"]} | {
        topology["vip"]["address"],
        "127.0.0.1",
    }


@pytest.fixture(scope="module", params=SIZES, ids=[f"{n}-per-role" for n in SIZES])
def sized(request, state_tree):
    # Engine ferretdb refuses 2 db nodes (1 = single PostgreSQL, 3+ = Patroni cluster): the
    # 2-per-role topology keeps one (3 and 5 db nodes: also test_render_patroni.py).
    dbs = 1 if request.param == 2 else request.param
    topology = make_topology(lbs=request.param, apps=request.param, dbs=dbs)
    return topology, state_tree(topology)


def test_haproxy_servers_are_the_app_nodes(sized):
    topology, tree = sized
    apps = nodes_with(topology, "app")
    for lb in nodes_with(topology, "lb"):
        text, _ = tree.rendered_files(lb["name"])["/etc/haproxy/haproxy.cfg"]
        servers = re.findall(
            r"^\s+server (\S+) (\S+):8443 ssl verify required .* verifyhost (\S+)$", text, re.M
        )
        assert servers == [(a["name"], a["address"], a["name"]) for a in apps]
        assert f"bind {topology['vip']['address']}:80\n" in text
        assert f"bind {topology['vip']['address']}:443 ssl crt " in text
        assert f"bind {lb['address']}:8404 ssl crt " in text
        assert "balance leastconn" in text


def test_keepalived_priorities_descend_and_peers_are_the_other_lbs(sized):
    topology, tree = sized
    lbs = nodes_with(topology, "lb")
    priorities = []
    for lb in lbs:
        files = tree.rendered_files(lb["name"])
        text, _ = files["/etc/keepalived/keepalived.conf"]
        priorities.append(int(re.search(r"^\s+priority (\d+)$", text, re.M).group(1)))
        peers = re.search(r"unicast_peer \{([^}]*)\}", text).group(1).split()
        assert peers == [o["address"] for o in lbs if o is not lb]
        assert re.search(rf"unicast_src_ip {re.escape(lb['address'])}$", text, re.M)
        assert "state BACKUP" in text
        assert f"{topology['vip']['address']}/24 dev eth0" in text
    assert priorities == sorted(priorities, reverse=True)
    assert len(set(priorities)) == len(priorities)


def test_pg_hba_admits_exactly_the_app_nodes(sized):
    topology, tree = sized
    dbs = nodes_with(topology, "db")
    for db in dbs:
        files = tree.rendered_files(db["name"])
        if len(dbs) >= 3:  # a Patroni cluster: Patroni writes pg_hba from its config
            patroni = yaml.safe_load(files["/etc/patroni/config.yml"][0])["postgresql"]
            hba = "\n".join(patroni["pg_hba"])
            assert patroni["listen"] == f"127.0.0.1,{db['address']}:5432"
        else:
            hba, _ = files["/etc/postgresql/15/main/pg_hba.conf"]
            conf, _ = files["/etc/postgresql/15/main/conf.d/webstack.conf"]
            assert f"listen_addresses = 'localhost,{db['address']}'" in conf
        hosts = re.findall(r"^hostssl\s+webstack\s+webstack\s+(\S+)/32", hba, re.M)
        assert hosts == [a["address"] for a in nodes_with(topology, "app")]


def test_ferretdb_sidecar_reaches_every_db_node(sized):
    topology, tree = sized
    app = nodes_with(topology, "app")[0]
    files = tree.rendered_files(app["name"])
    unit, _ = files["/etc/systemd/system/ferretdb.service"]
    url = re.search(r"--postgresql-url=postgres://(\S+?)/webstack\?(\S+)", unit)
    assert url.group(1).split(",") == [f"{d['address']}:5432" for d in nodes_with(topology, "db")]
    assert "target_session_attrs=read-write" in url.group(2)
    config = json.loads(files["/etc/webstack/app.json"][0])
    assert config["node_name"] == app["name"]
    assert config["node_address"] == app["address"]
    assert config["mongo_uri"].startswith(
        "mongodb://webstack:db%2FPw%2B1%3Dlong.enough~@127.0.0.1:27017/"
    )


def test_mongodb_uri_lists_every_db_node_with_the_replica_set(state_tree):
    for size in (1, 3, 5):  # a replica set of 2 has no majority once either is lost: refused
        topology = make_topology(lbs=1, apps=1, dbs=size, engine="mongodb")
        tree = state_tree(topology)
        files = tree.rendered_files("app1")
        uri = json.loads(files["/etc/webstack/app.json"][0])["mongo_uri"]
        parsed = pymongo.uri_parser.parse_uri(uri)  # what the app does with it, offline
        assert parsed["options"]["replicaSet"] == "rs0" and parsed["database"] == "webstack"
        hosts = re.search(r"^mongodb://[^@]+@([^/]+)/", uri).group(1).split(",")
        assert hosts == [f"{d['address']}:27017" for d in nodes_with(topology, "db")]
        assert "replicaSet=rs0" in uri
        assert "/etc/systemd/system/ferretdb.service" not in files
        db_files = tree.rendered_files("db1")
        mongod, _ = db_files["/etc/mongod.conf"]
        assert "replSetName: rs0" in mongod
        assert f"bindIp: 127.0.0.1,{topology['nodes'][-size]['address']}" in mongod


REPLSET = "webstack-db-mongodb-replset-webstack-replset"
ADMIN_USER = "webstack-db-mongodb-admin_user-webstack-mongodb_user"
APP_USER = "webstack-db-mongodb-app_user-webstack-mongodb_user"


def test_only_the_first_db_node_configures_the_replica_set_and_its_users(state_tree):
    topology = make_topology(lbs=1, apps=1, dbs=3, engine="mongodb")
    tree = state_tree(topology)
    dbs = nodes_with(topology, "db")
    for db in dbs:
        ids = tree.rendered()[db["name"]]["highstate_ids"]
        assert "webstack-db-mongodb-service-running" in ids
        setup = [i for i in ids if i in (REPLSET, ADMIN_USER, APP_USER)]
        assert setup == ([REPLSET, ADMIN_USER, APP_USER] if db is dbs[0] else []), db["name"]
    # The arguments each state gets (StateTree has no public call for the low data).
    low = tree._run("lowstate", dbs[0]["name"])
    replset = low[REPLSET]
    assert (replset["state"], replset["fun"], replset["name"]) == ("webstack", "replset", "rs0")
    assert replset["members"] == [f"{d['address']}:27017" for d in dbs]
    assert replset["require"] == [{"service": "webstack-db-mongodb-service-running"}]
    admin, app = low[ADMIN_USER], low[APP_USER]
    assert (
        (admin["state"], admin["fun"]) == (app["state"], app["fun"]) == ("webstack", "mongodb_user")
    )
    assert (admin["name"], admin["database"]) == ("admin", "admin")
    assert admin["roles"] == [{"role": "root", "db": "admin"}]
    assert admin["passwd_pillar"] == "webstack:secrets:mongodb_admin_password"
    assert admin["require"] == [{"webstack": REPLSET}]
    # The app's user is the one its URI logs in as (user webstack, authSource=webstack).
    uri = json.loads(tree.rendered_files("app1")["/etc/webstack/app.json"][0])["mongo_uri"]
    login = re.search(r"mongodb://([^:]+):.*[?&]authSource=([^&]+)", uri)
    assert login.groups() == ("webstack", "webstack")
    assert (app["name"], app["database"]) == ("webstack", "webstack")
    assert app["roles"] == [{"role": "readWrite", "db": "webstack"}]
    assert app["passwd_pillar"] == "webstack:secrets:db_password"
    assert app["require"] == [{"webstack": ADMIN_USER}]
    # No password in these states' arguments: they read them from pillar when they run.
    assert not {"passwd", "password"} & (set(admin) | set(app))
    text = json.dumps([replset, admin, app])
    assert SECRETS["mongodb_admin_password"] not in text
    assert SECRETS["db_password"] not in text


def test_no_rendered_file_names_an_address_outside_the_topology(sized):
    topology, tree = sized
    allowed = allowed_addresses(topology)
    for node in topology["nodes"]:
        assert tree.rendered_files(node["name"]), f"{node['name']}: no file rendered"
        for path, (text, _) in tree.rendered_files(node["name"]).items():
            found = set(IPV4.findall(text)) - allowed
            assert not found, f"{node['name']}:{path} names {found}"


def test_highstate_gives_each_node_its_roles_only(sized):
    topology, tree = sized
    for node in topology["nodes"]:
        ids = tree.rendered()[node["name"]]["highstate_ids"]
        prefixes = {i.split("-")[1] for i in ids}
        # Every node also gets its TLS identity (webstack.pki), whatever its roles.
        assert prefixes == {"common", "pki", *node["roles"]}
        assert ids[0] == "webstack-common-validation-webstack_topology-validated"
        # The role's packages install first, in their own process (parallel), without Debian's
        # Recommends, while the node's key and certificate are made.
        first_pkg = min(n for n, sid in enumerate(ids) if sid.endswith("-pkg-installed"))
        first_pki = min(n for n, sid in enumerate(ids) if sid.startswith("webstack-pki-"))
        assert first_pkg < first_pki, ids[:4]


def test_each_role_installs_its_packages_in_one_parallel_transaction(state_tree):
    topology = make_topology(lbs=1, apps=1, dbs=1)
    # How old the package lists may be before Salt refreshes them first: the pillar's say.
    tree = state_tree(topology, lookup={"pkg": {"cache_valid_time": 600}})
    for node in topology["nodes"]:
        low = tree._run("lowstate", node["name"])
        installs = [c for c in low.values() if c["state"] == "pkg" and c["fun"] == "installed"]
        assert len(installs) == 1, node["name"]
        assert installs[0]["parallel"] is True
        assert installs[0]["install_recommends"] is False
        assert installs[0]["cache_valid_time"] == 600
