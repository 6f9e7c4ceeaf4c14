"""
Run the state tree for one site in a process of its own and print the result as JSON.

Usage: python salt_runner.py MINION_CONFIG render
       python salt_runner.py MINION_CONFIG apply MINION_ID [SLS] [--no-test]
       python salt_runner.py MINION_CONFIG lowstate MINION_ID
       python salt_runner.py MINION_CONFIG show_sls MINION_ID SLS [SLS...]
       python salt_runner.py MINION_CONFIG pillar MINION_ID[=GRAINS_ID] [...]

Salt's loader keeps module globals (``__grains__``, ``__pillar__``) per process, so each site
(topology) is rendered in its own process; within it, one ``Loaders`` serves every minion id by
switching ``grains['id']`` and compiling that minion's own pillar (each gets only its roles' share
of the secrets).
"""

import copy
import json
import sys

import salt.config
from saltfactories.utils.functional import Loaders


def loaders_for(config_path):
    opts = salt.config.minion_config(config_path)
    opts["file_client"] = "local"
    return Loaders(opts)


def become(loaders, minion_id):
    """Act as ``minion_id``: its id and its own pillar, in every loaded module (as a minion's
    pillar refresh does: the loader's pack, and the pack of its inner ``__salt__`` loader)."""
    if loaders.opts["id"] == minion_id:
        return
    loaders.opts["id"] = minion_id
    loaders.grains["id"] = minion_id
    loaders.refresh_pillar()
    for loader in (loaders.modules, getattr(loaders.modules, "_dunder_salt", None)):
        if loader is not None and hasattr(loader, "pack"):
            loader.pack["__pillar__"] = loaders.opts["pillar"]


def managed_files(loaders, sls):
    mods = loaders.modules
    files = {}
    for state in mods.state.show_sls(sls).values():
        if "file" not in state or "managed" not in state["file"]:
            continue
        args = {k: v for item in state["file"] if isinstance(item, dict) for k, v in item.items()}
        if args.get("template") == "jinja":
            source = mods.cp.get_file_str(args["source"])
            text = mods.file.apply_template_on_contents(
                source, "jinja", copy.deepcopy(args.get("context", {})), {}, "base"
            )
        elif "contents" in args:
            text = args["contents"]
        else:
            continue
        files[args["name"]] = [text, args.get("check_cmd")]
    return files


def render(loaders, topology_nodes):
    out = {}
    for node in topology_nodes:
        become(loaders, node["name"])
        low = loaders.modules.state.show_lowstate()
        if not isinstance(low, list):
            raise SystemExit(f"{node['name']}: show_lowstate failed: {low}")
        files = {}
        for role in node["roles"]:
            files.update(managed_files(loaders, f"webstack.{role}"))
        out[node["name"]] = {
            "highstate_ids": [c["__id__"] for c in sorted(low, key=lambda c: c.get("order", 0))],
            "sls": sorted({c["__sls__"] for c in low}),
            "files": files,
        }
    return out


def apply(loaders, minion_id, sls=None, test=True):
    become(loaders, minion_id)
    mods = loaders.modules
    ret = mods.state.apply(sls, test=test) if sls else mods.state.apply(test=test)
    raw = getattr(ret, "raw", ret)
    if not isinstance(raw, dict):
        return {"__error__": raw if isinstance(raw, list) else str(raw)}
    return {
        key.split("_|-")[1]: {k: raw[key].get(k) for k in ("result", "comment", "changes")}
        for key in raw
    }


def lowstate(loaders, minion_id):
    """{state id: low chunk} of the minion's highstate (the arguments each state gets)."""
    become(loaders, minion_id)
    low = loaders.modules.state.show_lowstate()
    if not isinstance(low, list):
        raise SystemExit(f"{minion_id}: show_lowstate failed: {low}")
    return {chunk["__id__"]: chunk for chunk in low}


def show_sls(loaders, minion_id, names):
    """{sls: state.show_sls(sls)} for the minion (the high data: each state's arguments)."""
    become(loaders, minion_id)
    out = {}
    for name in names:
        high = loaders.modules.state.show_sls(name)
        if not isinstance(high, dict):
            raise SystemExit(f"{minion_id}: show_sls {name} failed: {high}")
        out[name] = high
    return out


def pillar(config_path, minions):
    """{minion: its compiled pillar} as a master compiles it: Salt's pillar compiler over the
    pillar roots, for the minion's authenticated id; ``ID=OTHER`` reports ``OTHER`` as its
    ``id`` grain (a minion lying about itself)."""
    import salt.pillar

    opts = salt.config.minion_config(config_path)
    opts["file_client"] = "local"
    out = {}
    for entry in minions:
        minion_id, _, grains_id = entry.partition("=")
        opts["id"] = minion_id
        compiled = salt.pillar.get_pillar(
            opts, {"id": grains_id or minion_id}, minion_id, saltenv="base"
        ).compile_pillar()
        out[entry] = json.loads(json.dumps(compiled, default=str))
    return out


def main(argv):
    config, command, *rest = argv
    if command == "pillar":
        sys.stdout.write("\n@@RESULT@@" + json.dumps(pillar(config, rest)))
        return
    loaders = loaders_for(config)
    if command == "render":
        nodes = json.loads(rest[0])
        result = render(loaders, nodes)
    elif command == "lowstate":
        result = lowstate(loaders, rest[0])
    elif command == "show_sls":
        result = show_sls(loaders, rest[0], rest[1:])
    else:
        test = "--no-test" not in rest
        rest = [r for r in rest if r != "--no-test"]
        result = apply(loaders, rest[0], rest[1] if len(rest) > 1 else None, test=test)
    sys.stdout.write("\n@@RESULT@@" + json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
