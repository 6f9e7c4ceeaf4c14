{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
# Database node. Engine ferretdb: PostgreSQL behind the FerretDB sidecars, a single one for one db
# node, a Patroni cluster on etcd (automatic failover) for three or more. Engine mongodb: a mongod
# replica-set member.
include:
  - {{ tplroot }}.common
{%- if webstack.valid %}
  {%- if webstack.node.db.engine != 'mongodb' %}
  {#- The packages first: they install in their own process (parallel) while the node's key
      and certificate are made. #}
  - .package
  {%- endif %}
  - {{ tplroot }}.pki
  {%- if webstack.node.db.engine == 'mongodb' %}
  - .mongodb
  {%- elif webstack.node.db.cluster %}
  - .etcd
  - .patroni
  {%- else %}
  - .postgresql
  {%- endif %}
{%- endif %}
