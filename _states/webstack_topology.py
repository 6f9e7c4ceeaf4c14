"""
The validation gate of the webstack state tree.

``webstack_topology.validated`` runs first on every minion (``order: 1``, ``failhard: True``): an
invalid topology or a missing secret fails the run with one message per problem, each naming the
offending key, and no other state runs.
"""

import logging

log = logging.getLogger(__name__)

__virtualname__ = "webstack_topology"


def __virtual__():
    if "webstack_topology.validate" not in __salt__:
        return (False, "the webstack_topology execution module is not synced (saltutil.sync_all)")
    return __virtualname__


def validated(name, require_membership=True):
    """
    Fail unless pillar ``webstack:topology`` and ``webstack:secrets`` are valid and, with
    ``require_membership``, this minion is one of the topology's nodes.

    name
        A label for the state (the topology's name reads well).

    .. code-block:: yaml

        common-validation-webstack_topology-validated:
          webstack_topology.validated:
            - name: lab
            - order: 1
            - failhard: true
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    report = __salt__["webstack_topology.validate"]()
    errors = list(report["errors"])
    log.debug("webstack_topology.validated %s: %d errors", name, len(errors))
    minion = __grains__["id"]
    if not errors and require_membership:
        node = __salt__["webstack_topology.node"]()
        # The master host's own minion is the site CA: in the topology as master.minion_id.
        is_ca = (node.get("pki") or {}).get("ca_minion") == minion
        if not node["roles"] and not is_ca:
            errors.append(
                f"nodes: this minion ({minion!r}) is not a node of the topology; add an entry "
                "with its name, address and roles"
            )
    if errors:
        ret["result"] = False
        ret["comment"] = "webstack: invalid pillar, nothing was changed:\n" + "\n".join(
            f"  - {error}" for error in errors
        )
        return ret
    ret["comment"] = f"topology {name!r} and secrets are valid"
    return ret
