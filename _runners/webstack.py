"""
The whole webstack cluster at a glance, from the master: ``salt-run webstack.status``.

It calls ``webstack.status`` on every minion and reports who holds the VIP (exactly one, or every
owner / none), each haproxy server as every lb sees it, and the database; the run exits non-zero
when the cluster is unhealthy (no VIP owner, split brain, an lb with no backend in service, the
database down). ``table`` holds the readable view; the rest is the same data, structured.

The runner only gathers and prints: the judgement is ``webstack_verdict.summarize`` (``_utils``,
synced to the master by ``salt-run saltutil.sync_utils`` or found through its ``utils_dirs``).
``salt-run webstack.derive`` hands the master (the orchestration) the derived topology
(``webstack_topology.derive``, also from ``_utils``): the master has no custom execution modules.
"""

import logging

import salt.client
import salt.utils.minions

log = logging.getLogger(__name__)

__virtualname__ = "webstack"


def __virtual__():
    for needed in ("webstack_verdict.summarize", "webstack_topology.derive"):
        if needed not in __utils__:
            module = needed.split(".", 1)[0]
            return (False, f"webstack runner: the {module} utils module is not synced (_utils)")
    return __virtualname__


def derive(topology):
    """
    The derived view of ``topology`` (pillar ``webstack:topology``, as the orchestration passes
    it): what ``webstack_topology.derive`` returns on a minion, with ``valid`` true; on an
    invalid topology ``{"valid": False, "errors": [...]}`` (each error names its key).

    CLI Example:

    .. code-block:: bash

        salt-run webstack.derive topology='{"name": "lab", "nodes": [...], ...}' --out=json
    """
    errors = __utils__["webstack_topology.problems"](topology)
    log.debug("webstack.derive: %d errors", len(errors))
    if errors:
        return {"valid": False, "errors": errors}
    return dict(__utils__["webstack_topology.derive"](topology), valid=True)


def status(tgt="*", tgt_type="glob", timeout=30, details=False):
    """
    Gather ``webstack.status`` from the minions and judge the cluster.

    tgt, tgt_type
        Which minions to ask (default: all).
    timeout
        Seconds to wait for the minions' answers.
    details
        Also return the judged data per node (``vip.nodes``, ``backends``, ``db``) and every
        minion's full answer (``minions``).

    Returns ``{healthy, retcode, problems, warnings, vip: {address, owners}, table}``; the exit
    code of ``salt-run`` is ``retcode`` (1 when unhealthy).

    CLI Example:

    .. code-block:: bash

        salt-run webstack.status
        salt-run webstack.status details=True --out=json
    """
    client = salt.client.get_local_client(mopts=__opts__)
    returns = client.cmd(
        tgt, "webstack.status", tgt_type=tgt_type, timeout=int(timeout), full_return=True
    )
    expected = salt.utils.minions.CkMinions(__opts__).check_minions(tgt, tgt_type)["minions"]
    log.debug("webstack.status: %d of %d minions answered", len(returns or {}), len(expected))
    report = __utils__["webstack_verdict.summarize"](returns, expected)
    __context__["retcode"] = report["retcode"]
    if details:
        report["minions"] = returns
        return report
    # The short form reads well in the default (nested) output: the table and the verdict.
    report["vip"] = {"address": report["vip"]["address"], "owners": report["vip"]["owners"]}
    return {k: v for k, v in report.items() if k not in ("backends", "db")}
