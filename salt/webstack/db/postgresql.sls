{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set pg = webstack.postgresql %}
{%- set db = webstack.node.db %}

include:
  - .package

{#- PostgreSQL (as postgres) reads this node's private key (group-readable, 0640). #}
webstack-db-postgresql-key_group-group-present:
  group.present:
    - name: {{ webstack.pki.key_group }}
    - addusers: [postgres]
    - require:
      - sls: {{ tplroot }}.db.package
      - sls: {{ tplroot }}.pki

{#- Listen on this node's address with TLS; only the app nodes (their FerretDB sidecars) may
    connect, over TLS with a password, to the app's database. The rest keeps Debian's defaults. #}
webstack-db-postgresql-conf-file-managed:
  file.managed:
    - name: {{ pg.conf_dir }}/conf.d/webstack.conf
    - source: salt://{{ tpldir }}/files/postgresql-webstack.conf.jinja
    - template: jinja
    - context:
        node: {{ webstack.node | tojson }}
        pki: {{ webstack.pki | tojson }}
    - user: postgres
    - group: postgres
    - mode: '0644'
    - require:
      - sls: {{ tplroot }}.db.package
      - group: webstack-db-postgresql-key_group-group-present

webstack-db-postgresql-hba-file-managed:
  file.managed:
    - name: {{ pg.conf_dir }}/pg_hba.conf
    - source: salt://{{ tpldir }}/files/pg_hba.conf.jinja
    - template: jinja
    - context:
        node: {{ webstack.node | tojson }}
    - user: postgres
    - group: postgres
    - mode: '0640'
    - require:
      - sls: {{ tplroot }}.db.package

{#- listen_addresses needs a restart; pg_hba only a reload. Salt restarts on the conf.d change
    and reloads on pg_hba changes (service.running reload: true restarts nothing). #}
webstack-db-postgresql-service-running:
  service.running:
    - name: {{ pg.service }}
    - enable: true
    - reload: true
    - watch:
      - file: webstack-db-postgresql-hba-file-managed
      # A reissued certificate is loaded on reload.
      - sls: {{ tplroot }}.pki

webstack-db-postgresql-restart-cmd-run:
  cmd.run:
    - name: systemctl restart {{ pg.service }}
    - onchanges:
      - file: webstack-db-postgresql-conf-file-managed
    - require:
      - service: webstack-db-postgresql-service-running

webstack-db-postgresql-user-webstack_postgres-user_present:
  webstack_postgres.user_present:
    - name: {{ db.user }}
    # Named, not given: the password stays out of the rendered SLS (a SCRAM-SHA-256 verifier).
    - password_pillar: webstack:secrets:db_password
    - login: true
    - createdb: false
    - superuser: false
    - require:
      - cmd: webstack-db-postgresql-restart-cmd-run

webstack-db-postgresql-database-postgres_database-present:
  postgres_database.present:
    - name: {{ db.name }}
    - owner: {{ db.user }}
    - require:
      - webstack_postgres: webstack-db-postgresql-user-webstack_postgres-user_present
