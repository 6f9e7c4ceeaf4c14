{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set patroni = webstack.patroni %}
{%- set etcd = webstack.etcd %}
# Removes what the db role installed, data included: only ever run it on purpose.

webstack-db-clean-service-dead:
  service.dead:
    - names:
      - {{ patroni.service }}
      - {{ etcd.service }}
      - {{ webstack.postgresql.service }}
      - {{ webstack.mongodb.service }}
    - enable: false

webstack-db-clean-pkg-purged:
  pkg.purged:
    - pkgs: {{ (webstack.postgresql.packages + patroni.packages + etcd.packages
                + [webstack.mongodb.package]) | unique | list | tojson }}
    - require:
      - service: webstack-db-clean-service-dead

webstack-db-clean-file-absent:
  file.absent:
    - names:
      - {{ webstack.mongodb.config }}
      - {{ webstack.mongodb.keyfile }}
      - /etc/apt/sources.list.d/mongodb-org-{{ webstack.mongodb.version }}.list
      - {{ patroni.config }}
      - {{ patroni.data_dir }}
      - {{ patroni.pgpass }}
      - {{ patroni.createcluster_conf }}
      - {{ patroni.check_config }}
      - {{ patroni.drop_default_cluster }}
      - {{ etcd.config }}
      - {{ etcd.dropin }}
      - {{ etcd.data_dir }}
    - require:
      - pkg: webstack-db-clean-pkg-purged
