# Every minion gets the topology (imported from topology.yaml, found in the pillar roots) and the
# local lookup. Of the site's secrets (webstack_secrets.sls, in the pillar roots too but not listed
# here) each minion gets only what its roles use: webstack.role_secrets renders the file and keeps
# that share. Which states a minion gets is decided from the topology in salt/top.sls.
base:
  '*':
    - webstack
    - webstack.role_secrets
    - webstack_local
    - ignore_missing: true   # missing secrets are reported by the validation state, by key
