{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
# The whole node, as top.sls gives it: common (the validation gate), then the state of each role
# the topology gives this minion. On an invalid topology only the gate, which fails the run.
include:
  - {{ tplroot }}.common
{%- if webstack.valid %}
  {%- for role in webstack.node.roles %}
  - {{ tplroot }}.{{ role }}
  {%- endfor %}
{%- endif %}
