"""What salt/orch/deploy.sls does per app node, for its unit test and the e2e rolling deploy."""

#: Per app node, in this order: (step, orchestration function) as in the state ids; no node is
#: touched before the previous one is back in service.
STEPS = (
    ("drain", "function"),
    ("apply", "state"),
    ("healthy", "function"),
    ("seen-up", "function"),
    ("ready", "function"),
)
