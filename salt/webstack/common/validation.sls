webstack-common-validation-webstack_topology-validated:
  webstack_topology.validated:
    - name: {{ salt['pillar.get']('webstack:topology:name', 'webstack') | yaml_dquote }}
    - order: 1
    - failhard: true
