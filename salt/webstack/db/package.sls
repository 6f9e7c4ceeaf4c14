{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set db = webstack.node.db %}
{#- The db node's packages for its engine, in one apt transaction: PostgreSQL, or with 3+ db nodes
    PostgreSQL, Patroni and etcd. (MongoDB's come from their own repository: mongodb.sls.) #}
{%- if db.engine != 'mongodb' %}
{%-   if db.cluster %}
{%-     set packages = webstack.patroni.packages + webstack.etcd.packages %}

{#- Patroni runs PostgreSQL here: Debian's own cluster 15/main must never be created (and
    started) by the package's install, so this is in place before it. #}
webstack-db-package-createcluster-file-managed:
  file.managed:
    - name: {{ webstack.patroni.createcluster_conf }}
    - contents: |
        # Managed by Salt (webstack db role): Patroni runs PostgreSQL on this node; Debian's
        # postgresql package must not create (and start) its default cluster.
        create_main_cluster = false
    - makedirs: true
    - require:
      - sls: {{ tplroot }}.common.validation
{%-   else %}
{%-     set packages = webstack.postgresql.packages %}
{%-   endif %}

webstack-db-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ packages | unique | list | tojson }}
    - install_recommends: {{ webstack.pkg.install_recommends | tojson }}
    - cache_valid_time: {{ webstack.pkg.cache_valid_time | int }}
    # In its own process while the states that do not need it (this node's key and certificate)
    # go on: nothing else here runs apt, and what needs the packages requires this SLS.
    - parallel: true
    - require:
      - sls: {{ tplroot }}.common.validation
{%-   if db.cluster %}
      - file: webstack-db-package-createcluster-file-managed
{%-   endif %}
{%- endif %}
