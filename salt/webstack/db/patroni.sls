{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set patroni = webstack.patroni %}
{%- set default = patroni.default_cluster %}
{%- set db = webstack.node.db %}

{#- PostgreSQL under Patroni (engine ferretdb, 3+ db nodes): the node that wins the race in etcd
    runs initdb, the others clone it; Patroni keeps one leader, a synchronous standby, and fails
    over. Debian's own cluster 15/main must not run beside it: it is never created (db/package.sls
    puts the createcluster.d setting in place before the package), and one created earlier is
    dropped while it is still empty. #}
include:
  - .package
  - .etcd

webstack-db-patroni-helpers-file-managed:
  file.managed:
    - names:
      - {{ patroni.check_config }}:
        - source: salt://{{ tpldir }}/files/patroni-check-config
      - {{ patroni.drop_default_cluster }}:
        - source: salt://{{ tpldir }}/files/pg-drop-default-cluster
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true
    - require:
      - sls: {{ tplroot }}.common.validation

{#- Only while the default cluster exists (a node where PostgreSQL was installed before): once
    dropped, `onlyif` is false on every later run. #}
webstack-db-patroni-default_cluster-cmd-run:
  cmd.run:
    - name: {{ patroni.drop_default_cluster }} {{ default.version }} {{ default.name }}
    - onlyif: test -e /etc/postgresql/{{ default.version }}/{{ default.name }}/postgresql.conf
    - require:
      - sls: {{ tplroot }}.db.package
      - file: webstack-db-patroni-helpers-file-managed

webstack-db-patroni-config-file-managed:
  file.managed:
    - name: {{ patroni.config }}
    - source: salt://{{ tpldir }}/files/patroni.yml.jinja
    - template: jinja
    - context:
        node: {{ webstack.node | tojson }}
        patroni: {{ patroni | tojson }}
        pki: {{ webstack.pki | tojson }}
    - user: root
    - group: postgres
    - mode: '0640'
    - makedirs: true
    # It holds the cluster's passwords: no diff in the state's output.
    - show_changes: false
    # Patroni's own validator (schema and values) before the file goes live.
    - check_cmd: {{ patroni.check_config }}
    - require:
      - sls: {{ tplroot }}.db.package
      - file: webstack-db-patroni-helpers-file-managed

{#- PostgreSQL and Patroni (as postgres) read this node's private key (group-readable, 0640). #}
webstack-db-patroni-key_group-group-present:
  group.present:
    - name: {{ webstack.pki.key_group }}
    - addusers: [postgres]
    - require:
      - sls: {{ tplroot }}.db.package
      - sls: {{ tplroot }}.pki

{#- Patroni's data_dir: Patroni (as postgres) runs initdb or pg_basebackup into it. #}
webstack-db-patroni-data-file-directory:
  file.directory:
    - name: {{ patroni.data_dir }}
    - user: postgres
    - group: postgres
    - mode: '0700'
    - makedirs: true
    - require:
      - sls: {{ tplroot }}.db.package

{#- SIGHUP (Debian's ExecReload) re-reads the file; a setting that needs a PostgreSQL restart shows
    as `pending_restart` in `patronictl list`. #}
webstack-db-patroni-service-running:
  service.running:
    - name: {{ patroni.service }}
    - enable: true
    - reload: true
    - require:
      - sls: {{ tplroot }}.db.etcd
      - cmd: webstack-db-patroni-default_cluster-cmd-run
      - file: webstack-db-patroni-data-file-directory
      - group: webstack-db-patroni-key_group-group-present
    - watch:
      - file: webstack-db-patroni-config-file-managed
      # A reissued certificate: the reload makes PostgreSQL and the REST API load it.
      - sls: {{ tplroot }}.pki

{#- Until this member runs PostgreSQL (as leader or replica) and the cluster has a leader: the first
    apply waits here for the bootstrap. Reports no change. #}
webstack-db-patroni-member-webstack_patroni-member_running:
  webstack_patroni.member_running:
    - name: {{ webstack.node.name }}
    - timeout: 300
    - require:
      - service: webstack-db-patroni-service-running

{#- The cluster-wide (dynamic) settings live in etcd; this keeps them as the map says, through
    the leader's REST API (PATCH /config only when something differs). #}
webstack-db-patroni-dynamic_config-webstack_patroni-dynamic_config:
  webstack_patroni.dynamic_config:
    - name: {{ webstack.node.db_cluster.scope }}
    - config: {{ patroni.dcs | tojson }}
    - onlyif:
      - fun: webstack_patroni.is_leader
    - require:
      - webstack_patroni: webstack-db-patroni-member-webstack_patroni-member_running

{#- The app's role and database, on the leader only (replicas are read-only and receive them by
    replication): on other nodes `onlyif` is false and nothing is reported. #}
webstack-db-patroni-user-webstack_postgres-user_present:
  webstack_postgres.user_present:
    - name: {{ db.user }}
    # Named, not given: the password stays out of the rendered SLS (a SCRAM-SHA-256 verifier).
    - password_pillar: webstack:secrets:db_password
    - login: true
    - createdb: false
    - superuser: false
    - onlyif:
      - fun: webstack_patroni.is_leader
    - require:
      - webstack_patroni: webstack-db-patroni-member-webstack_patroni-member_running

webstack-db-patroni-database-postgres_database-present:
  postgres_database.present:
    - name: {{ db.name }}
    - owner: {{ db.user }}
    - onlyif:
      - fun: webstack_patroni.is_leader
    - require:
      - webstack_postgres: webstack-db-patroni-user-webstack_postgres-user_present
