"""
The whole webstack cluster at a glance, from the master: ``salt-run webstack.status``.

It calls ``webstack.status`` on every minion and reports who holds the VIP (exactly one, or every
owner / none), each haproxy server as every lb sees it, and the database; the run exits non-zero
when the cluster is unhealthy (no VIP owner, split brain, an lb with no backend in service, the
database down). ``table`` holds the readable view; the rest is the same data, structured.

The runner only gathers and prints: the judgement is ``webstack_verdict.summarize`` (``_utils``,
synced to the master by ``salt-run saltutil.sync_utils`` or found through its ``utils_dirs``).
"""

import logging

import salt.client
import salt.utils.minions

log = logging.getLogger(__name__)

__virtualname__ = "webstack"


def __virtual__():
    if "webstack_verdict.summarize" not in __utils__:
        return (False, "webstack runner: the webstack_verdict utils module is not synced (_utils)")
    return __virtualname__


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
