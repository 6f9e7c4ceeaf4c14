{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set mongodb = webstack.mongodb %}
{%- set node = webstack.node %}

{#- MongoDB's official packages (not in Debian). The repository and its key come from the map so a
    mirror can be set in pillar (webstack:lookup:mongodb). #}
db-mongodb-pkgrepo-managed:
  pkgrepo.managed:
    - name: deb [signed-by=/usr/share/keyrings/mongodb-server-{{ mongodb.version }}.gpg] {{ mongodb.repo_url }} bookworm/mongodb-org/{{ mongodb.version }} main
    - file: /etc/apt/sources.list.d/mongodb-org-{{ mongodb.version }}.list
    - key_url: {{ mongodb.repo_key_url }}
    - aptkey: false
    - signedby: /usr/share/keyrings/mongodb-server-{{ mongodb.version }}.gpg
    - require:
      - sls: {{ tplroot }}.common.validation

db-mongodb-pkg-installed:
  pkg.installed:
    - name: {{ mongodb.package }}
    - require:
      - pkgrepo: db-mongodb-pkgrepo-managed

db-mongodb-keyfile-file-managed:
  file.managed:
    - name: {{ mongodb.keyfile }}
    - contents_pillar: webstack:secrets:mongodb_keyfile
    - user: mongodb
    - group: mongodb
    - mode: '0400'
    - show_changes: false
    - require:
      - pkg: db-mongodb-pkg-installed

db-mongodb-config-file-managed:
  file.managed:
    - name: {{ mongodb.config }}
    - source: salt://{{ tpldir }}/files/mongod.conf.jinja
    - template: jinja
    - context:
        webstack: {{ webstack | tojson }}
    # mongod has no config-test flag; the YAML must at least parse before it replaces the file.
    - check_cmd: {{ grains.pythonexecutable }} -c "import sys, yaml; yaml.safe_load(open(sys.argv[1]))"
    - require:
      - pkg: db-mongodb-pkg-installed

db-mongodb-service-running:
  service.running:
    - name: {{ mongodb.service }}
    - enable: true
    - watch:
      - file: db-mongodb-config-file-managed
      - file: db-mongodb-keyfile-file-managed
