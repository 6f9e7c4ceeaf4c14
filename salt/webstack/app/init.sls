{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
# App server: nginx -> gunicorn (a supervisor program; supervisor under systemd) -> the Flask app,
# plus, with the ferretdb engine, a local FerretDB sidecar the app talks to on 127.0.0.1.
include:
  - {{ tplroot }}.common
{%- if webstack.valid %}
  {#- The packages first: they install in their own process (parallel) while the node's key
      and certificate are made. #}
  - .package
  - {{ tplroot }}.pki
  - .user
  - .code
  - .supervisor
  - .nginx
  {%- if webstack.node.db.engine == 'ferretdb' %}
  - .ferretdb
  {%- endif %}
  - .schema
{%- endif %}
