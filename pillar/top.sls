# Every minion gets the topology (imported from topology.yaml, found in the pillar roots) and the
# secrets; the site CA's minion its signing policies (webstack.ca renders them for it alone).
# Which states a minion gets is decided from the topology in salt/top.sls.
base:
  '*':
    - webstack
    - webstack.ca
    - webstack_secrets
    - webstack_local
    - ignore_missing: true   # a missing secrets file is reported by the validation state, by key
