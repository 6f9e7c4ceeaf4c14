{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
# Database node: PostgreSQL behind the FerretDB sidecars (engine ferretdb), or a mongod
# replica-set member (engine mongodb).
include:
  - {{ tplroot }}.common
{%- if webstack.valid %}
  - .{{ 'postgresql' if webstack.node.db.engine == 'ferretdb' else 'mongodb' }}
{%- endif %}
