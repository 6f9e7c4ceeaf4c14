{#- Roles come from the topology: this minion's entry (matched by minion id) lists them. No minion
    id or address is written here. The master host's own minion (the topology's master.minion_id)
    gets the site CA. On an invalid topology (or missing secrets) only the validation
    state is applied, so the run fails with its message and nothing else runs. #}
{%- set node = salt['webstack_topology.node']() %}
{%- set valid = salt['webstack_topology.validate']()['valid'] %}
base:
  '*':
    - webstack.common
{%- if valid %}
  {%- if node.pki.ca_minion == node.name %}
    - webstack.pki.ca
  {%- endif %}
  {%- for role in node.roles %}
    - webstack.{{ role }}
  {%- endfor %}
{%- endif %}
