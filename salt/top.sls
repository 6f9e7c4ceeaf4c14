{#- Roles come from the topology: this minion's entry (matched by minion id) lists them. No minion
    id or address is written here. On an invalid topology (or missing secrets) only the validation
    state is applied, so the run fails with its message and nothing else runs. #}
{%- set node = salt['webstack_topology.node']() %}
{%- set valid = salt['webstack_topology.validate']()['valid'] %}
base:
  '*':
    - webstack.common
{%- if valid %}
  {%- for role in node.roles %}
    - webstack.{{ role }}
  {%- endfor %}
{%- endif %}
