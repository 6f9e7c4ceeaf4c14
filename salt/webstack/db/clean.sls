{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set pg = webstack.postgresql %}
{%- set patroni = webstack.patroni %}
{%- set etcd = webstack.etcd %}
{%- set mongodb = webstack.mongodb %}
# Removes what the db role put on the node, whichever engine it ran (webstack.db.postgresql,
# .etcd, .patroni, .mongodb), data included: only ever run it on purpose.

webstack-db-clean-service-dead:
  service.dead:
    - names:
      - {{ patroni.service }}
      - {{ etcd.service }}
      - {{ pg.service }}
      - {{ mongodb.service }}
    - enable: false

{#- postgresql is a metapackage: the server and client of its version go too. #}
webstack-db-clean-pkg-purged:
  pkg.purged:
    - pkgs: {{ (pg.packages + ['postgresql-%s' % pg.version, 'postgresql-client-%s' % pg.version]
                + patroni.packages + etcd.packages + [mongodb.package]) | unique | list | tojson }}
    - require:
      - service: webstack-db-clean-service-dead

webstack-db-clean-file-absent:
  file.absent:
    - names:
      # engine ferretdb, one db node (webstack.db.postgresql)
      - {{ pg.conf_dir }}
      - {{ pg.data_dir }}
      # engine ferretdb, a Patroni cluster (webstack.db.patroni, webstack.db.etcd)
      - {{ patroni.config }}
      - {{ patroni.data_dir }}
      - {{ patroni.pgpass }}
      - {{ patroni.createcluster_conf }}
      - {{ patroni.check_config }}
      - {{ patroni.drop_default_cluster }}
      - {{ etcd.config }}
      - {{ etcd.dropin }}
      - {{ etcd.data_dir }}
      # engine mongodb (webstack.db.mongodb): the repository, its keyring, config, key and data
      - /etc/apt/sources.list.d/mongodb-org-{{ mongodb.version }}.list
      - /usr/share/keyrings/mongodb-server-{{ mongodb.version }}.gpg
      - {{ mongodb.config }}
      - {{ mongodb.keyfile }}
      - {{ mongodb.data_dir }}
    - require:
      - pkg: webstack-db-clean-pkg-purged

{#- The etcd drop-in is gone: systemd forgets it only on daemon-reload. #}
webstack-db-clean-unit-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: webstack-db-clean-file-absent
