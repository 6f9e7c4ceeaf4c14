{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import topology with context %}
webstack-common-validation-webstack_topology-validated:
  webstack_topology.validated:
    - name: {{ (topology.get('name', 'webstack') if topology is mapping else 'webstack') | yaml_dquote }}
    - order: 1
    - failhard: true
