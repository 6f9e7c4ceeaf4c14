# Every minion gets the topology (imported from topology.yaml, found in the pillar roots) and the
# local lookup; the site CA's minion its signing policies (webstack.ca renders them for it alone).
# Of the site's secrets (webstack_secrets.sls, in the pillar roots too but not listed here) each
# minion gets only what its roles use: webstack.role_secrets renders the file and keeps that
# share (the CA minion's is empty). Which states a minion gets is decided from the topology in
# salt/top.sls.
base:
  '*':
    - webstack
    - webstack.ca
    - webstack.role_secrets
    - webstack_local
    - ignore_missing: true   # missing secrets are reported by the validation state, by key
