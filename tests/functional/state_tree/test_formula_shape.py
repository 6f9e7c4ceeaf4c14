"""
The state tree in saltstack-formulas' template-formula shape: pillar is read in map.jinja only,
every state id is ``webstack-<sls path>-[<purpose>-]<module>-<function>``, each template gets
only the context it renders (and of the secrets, only those it writes), ``webstack`` and
``webstack.clean`` give a node its roles, and each role's clean removes everything its states
create. Rendered on masterless minions (support/state_tree.py) for every role and engine.
"""

import pathlib
import re

import pytest
from support.state_tree import REPO, SECRETS, make_topology

SALT = REPO / "salt"
TOPOLOGIES = {
    "ferretdb-single-db": make_topology(lbs=2, apps=2, dbs=1),
    "ferretdb-patroni": make_topology(lbs=1, apps=1, dbs=3),
    "mongodb": make_topology(lbs=1, apps=1, dbs=3, engine="mongodb"),
}
ROLE_NODES = ("lb1", "app1", "db1")

#: The secrets each template writes; every other template gets none in its context.
#: No template gets a secret through its context (state.show_sls shows contexts; the job cache
#: keeps them): the ones that write secrets take them from map.jinja themselves.
TEMPLATE_SECRETS = {}
#: Every file rendered from a template with a context (so the check above is not vacuous).
TEMPLATES = {
    "/etc/haproxy/haproxy.cfg",
    "/etc/systemd/system/haproxy.service.d/webstack.conf",
    "/etc/keepalived/keepalived.conf",
    "/etc/nginx/sites-available/webstack",
    "/etc/supervisor/conf.d/webstack-app.conf",
    "/etc/webstack/app.json",
    "/etc/systemd/system/ferretdb.service",
    "/etc/postgresql/15/main/conf.d/webstack.conf",
    "/etc/postgresql/15/main/pg_hba.conf",
    "/etc/etcd/webstack.yml",
    "/etc/systemd/system/etcd.service.d/webstack.conf",
    "/etc/patroni/config.yml",
    "/etc/mongod.conf",
}


def sls_files():
    return sorted(p for p in SALT.rglob("*.sls") if not any(q.is_symlink() for q in p.parents))


def sls_name(path):
    parts = list(path.relative_to(SALT).with_suffix("").parts)
    if parts[-1] == "init":
        parts.pop()
    return ".".join(parts)


def args_of(body):
    """(module, function, {arg: value}) of one state in show_sls output."""
    module = next(k for k in body if not k.startswith("__"))
    function = next(item for item in body[module] if isinstance(item, str))
    items = body[module]
    return (
        module,
        function,
        {k: v for item in items if isinstance(item, dict) for k, v in item.items()},
    )


def names_of(args):
    """Every name a state acts on (``name``, or each of ``names``, plain or with arguments)."""
    if "names" in args:
        return [next(iter(n)) if isinstance(n, dict) else n for n in args["names"]]
    return [args["name"]]


def leaves(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield str(value)


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def site(request, state_tree):
    topology = TOPOLOGIES[request.param]
    tree = state_tree(topology)
    high = {
        node: tree.show_sls(
            node,
            "webstack",
            "webstack.clean",
            *(
                f"webstack.{role}"
                for role in next(n["roles"] for n in topology["nodes"] if n["name"] == node)
            ),
        )
        for node in ROLE_NODES
    }
    return topology, tree, high


# --- pillar only in map.jinja --------------------------------------------------------------------


def test_pillar_is_read_in_map_jinja_only():
    readers = re.compile(r"pillar\.get|salt\[['\"]pillar")
    hits = sorted(
        str(path.relative_to(REPO))
        for path in SALT.rglob("*")
        if path.is_file()
        and not any(q.is_symlink() for q in [path, *path.parents])
        and readers.search(path.read_text(errors="replace"))
    )
    assert hits == ["salt/webstack/map.jinja"]


#: The templates that write a secret, and the secrets each takes from the map itself.
SECRET_WRITERS = {
    "lb/files/haproxy.cfg.jinja": {"stats_password"},
    "app/files/app.json.jinja": {"app_secret_key", "db_password"},
    "db/files/patroni.yml.jinja": {
        "patroni_rest_password",
        "postgres_superuser_password",
        "postgres_replication_password",
        "postgres_rewind_password",
    },
}
MAP_IMPORT = "{%- from 'webstack/map.jinja' import webstack with context %}"


def test_templates_read_only_their_context():
    """No template reaches into the whole map (``webstack.``) but for the secrets it writes."""
    for path in sorted(SALT.glob("webstack/*/files/*.jinja")):
        text = path.read_text()
        wanted = SECRET_WRITERS.get(str(path.relative_to(SALT / "webstack")), set())
        if wanted:
            assert MAP_IMPORT in text, path
            text = text.replace(MAP_IMPORT, "")
            assert set(re.findall(r"\bwebstack\.secrets\.(\w+)", text)) == wanted, path
            text = re.sub(r"\bwebstack\.secrets\.\w+", "", text)
        code = " ".join(re.findall(r"\{\{.*?\}\}|\{%.*?%\}", text, re.S))
        assert not re.search(r"\bwebstack\.|\bsecrets\b", code), path


# --- state ids -----------------------------------------------------------------------------------


def test_every_state_id_in_the_tree_is_prefixed_by_its_sls_path():
    """Parsed from the files: every top-level key (bar include/extend) of every sls."""
    checked = 0
    for path in sls_files():
        prefix = "webstack-" + sls_name(path).removeprefix("webstack.").replace(".", "-") + "-"
        for line in path.read_text().splitlines():
            match = re.match(r"^([^\s#{][^:]*):\s*$", line)
            if match and match.group(1) not in ("include", "extend", "base"):
                assert match.group(1).startswith(prefix), f"{path}: {match.group(1)}"
                checked += 1
    assert checked > 80


def test_every_rendered_state_id_is_sls_path_then_module_function(site):
    _, _, high = site
    for node, by_sls in high.items():
        for states in by_sls.values():
            assert states, node
            for state_id, body in states.items():
                module, function, _ = args_of(body)
                prefix = body["__sls__"].replace(".", "-") + "-"
                assert state_id.startswith("webstack-") and state_id.startswith(prefix), state_id
                assert state_id.endswith(f"-{module}-{function}"), state_id


# --- template contexts ---------------------------------------------------------------------------


def test_each_template_context_holds_only_the_secrets_it_writes(site):
    _, _, high = site
    seen = set()
    for node, by_sls in high.items():
        for state_id, body in by_sls["webstack"].items():
            module, function, args = args_of(body)
            if (module, function) != ("file", "managed") or args.get("template") != "jinja":
                continue
            assert "context" in args, state_id
            assert "webstack" not in args["context"], state_id
            text = "\n".join(leaves(args["context"]))
            found = {key for key, value in SECRETS.items() if value in text}
            assert found == TEMPLATE_SECRETS.get(args["name"], set()), (node, args["name"])
            seen.add(args["name"])
    assert seen <= TEMPLATES
    assert seen >= {"/etc/haproxy/haproxy.cfg", "/etc/nginx/sites-available/webstack"}


def test_every_template_is_rendered_somewhere(state_tree):
    seen = set()
    for topology in TOPOLOGIES.values():
        tree = state_tree(topology)
        for node in ROLE_NODES:
            seen |= set(tree.rendered_files(node))
    assert TEMPLATES <= seen


# --- webstack and webstack.clean -----------------------------------------------------------------


def test_webstack_is_the_highstate_and_clean_the_roles_cleans(site):
    topology, tree, high = site
    for node in ROLE_NODES:
        roles = next(n["roles"] for n in topology["nodes"] if n["name"] == node)
        assert set(high[node]["webstack"]) == set(tree.rendered()[node]["highstate_ids"]), node
        cleans = {body["__sls__"] for body in high[node]["webstack.clean"].values()}
        expected = {"webstack.common.clean", "webstack.pki.clean"}
        assert cleans == expected | {f"webstack.{r}.clean" for r in roles}


def covered(path, removed):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in removed)


KINDS = ("paths", "pkgs", "users", "groups", "services")


def _made_by(module, function, args):
    """(kind, names) a state creates, or None."""
    if module == "file" and function in ("managed", "directory", "recurse", "symlink"):
        return "paths", names_of(args)
    if module == "pkgrepo":
        return "paths", {args["file"], args["signedby"]}
    if (module, function) == ("pkg", "installed"):
        return "pkgs", set(args.get("pkgs") or [args["name"]])
    if module in ("user", "group", "service"):
        return f"{module}s", {args["name"]}
    if module == "sysctl":
        return "paths", {args["config"]}
    return None


#: What a role makes sure exists but the distribution owns, so a clean leaves it: Debian's
#: ssl-cert group (its package's, which postgresql pulls in), the group of the nodes' keys.
DISTRIBUTION_OWNED = {"groups": {"ssl-cert"}}

#: What each clean state function takes away.
REMOVERS = {
    ("file", "absent"): "paths",
    ("user", "absent"): "users",
    ("group", "absent"): "groups",
    ("service", "dead"): "services",
}


def _removed_by(module, function, args):
    """(kind, names) a clean state removes, or None."""
    if (module, function) == ("pkg", "purged"):
        return "pkgs", set(args["pkgs"])
    kind = REMOVERS.get((module, function))
    return (kind, names_of(args)) if kind else None


def _inventory(states, classify):
    found = {kind: set() for kind in KINDS}
    for body in states.values():
        hit = classify(*args_of(body))
        if hit:
            found[hit[0]].update(hit[1])
    return found


def _sysctls(states, module_function):
    """Keys a role sets (sysctl.present) or resets to 0 (``sysctl -w key=0`` in its clean)."""
    keys = set()
    for body in states.values():
        module, function, args = args_of(body)
        if module_function == "set" and module == "sysctl":
            keys.add(args["name"])
        elif module_function == "reset" and (module, function) == ("cmd", "run"):
            if args["name"].startswith("sysctl -w "):
                key, value = args["name"].removeprefix("sysctl -w ").split("=")
                assert value == "0", args["name"]
                keys.add(key)
    return keys


def test_each_role_clean_removes_what_its_states_create(site):
    _, _, high = site
    for node in ROLE_NODES:
        made = _inventory(high[node]["webstack"], _made_by)
        gone = _inventory(high[node]["webstack.clean"], _removed_by)
        left = {p for p in made["paths"] if not covered(p, gone["paths"])}
        assert not left, (node, left)
        for kind in KINDS[1:]:
            kept = made[kind] - gone[kind] - DISTRIBUTION_OWNED.get(kind, set())
            assert not kept, (node, kind, kept)
        assert _sysctls(high[node]["webstack"], "set") == _sysctls(
            high[node]["webstack.clean"], "reset"
        ), node
    lb_paths = {
        p
        for body in high["lb1"]["webstack.clean"].values()
        for p in (names_of(args_of(body)[2]) if args_of(body)[:2] == ("file", "absent") else [])
    }
    assert "/etc/sysctl.d/99-webstack.conf" in lb_paths


def test_the_orchestration_is_in_the_tree_the_checks_cover():
    assert sls_name(SALT / "orch" / "deploy.sls") == "orch.deploy"
    assert SALT / "orch" / "deploy.sls" in sls_files()
    assert pathlib.Path(SALT / "webstack" / "init.sls").is_file()
    assert pathlib.Path(SALT / "webstack" / "clean.sls").is_file()
