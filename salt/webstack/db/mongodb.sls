{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set mongodb = webstack.mongodb %}
{%- set node = webstack.node %}
{%- set db = node.db %}

{#- MongoDB's official packages (not in Debian). The repository and its key come from the map so a
    mirror can be set in pillar (webstack:lookup:mongodb). #}
webstack-db-mongodb-pkgrepo-managed:
  pkgrepo.managed:
    - name: deb [signed-by=/usr/share/keyrings/mongodb-server-{{ mongodb.version }}.gpg] {{ mongodb.repo_url }} bookworm/mongodb-org/{{ mongodb.version }} main
    - file: /etc/apt/sources.list.d/mongodb-org-{{ mongodb.version }}.list
    - key_url: {{ mongodb.repo_key_url }}
    - aptkey: false
    - signedby: /usr/share/keyrings/mongodb-server-{{ mongodb.version }}.gpg
    - require:
      - sls: {{ tplroot }}.common.validation

webstack-db-mongodb-pkg-installed:
  pkg.installed:
    - name: {{ mongodb.package }}
    - install_recommends: {{ webstack.pkg.install_recommends | tojson }}
    - cache_valid_time: {{ webstack.pkg.cache_valid_time | int }}
    - require:
      - pkgrepo: webstack-db-mongodb-pkgrepo-managed

webstack-db-mongodb-keyfile-file-managed:
  file.managed:
    - name: {{ mongodb.keyfile }}
    - contents_pillar: webstack:secrets:mongodb_keyfile
    - user: mongodb
    - group: mongodb
    - mode: '0400'
    - show_changes: false
    - require:
      - pkg: webstack-db-mongodb-pkg-installed

webstack-db-mongodb-config-file-managed:
  file.managed:
    - name: {{ mongodb.config }}
    - source: salt://{{ tpldir }}/files/mongod.conf.jinja
    - template: jinja
    - context:
        node: {{ webstack.node | tojson }}
        mongodb: {{ mongodb | tojson }}
    # mongod has no config-test flag; the YAML must at least parse before it replaces the file.
    - check_cmd: {{ grains.pythonexecutable }} -c "import sys, yaml; yaml.safe_load(open(sys.argv[1]))"
    - require:
      - pkg: webstack-db-mongodb-pkg-installed

webstack-db-mongodb-service-running:
  service.running:
    - name: {{ mongodb.service }}
    - enable: true
    - watch:
      - file: webstack-db-mongodb-config-file-managed
      - file: webstack-db-mongodb-keyfile-file-managed

{#- One node configures the set: the FIRST db node of the topology initiates it (with every db node,
    in topology order) and adds any member missing later; the others only run mongod and are
    brought in by it. Two nodes reconfiguring concurrently would race (replSetReconfig on
    different versions, or two nodes initiating two sets), so no other node tries. #}
{%- if node.mongodb_initiator == node.name %}

webstack-db-mongodb-replset-webstack-replset:
  webstack.replset:
    - name: {{ db.replica_set }}
    - members: {{ node.mongodb_members | tojson }}
    - require:
      - service: webstack-db-mongodb-service-running

{#- Users, once the set is initiated and this node is its PRIMARY (the states wait for the first
    election). The admin user comes first, through MongoDB's localhost exception (no user exists
    yet); every later login, the app user's creation included, uses it. Passwords stay in pillar
    (passwd_pillar): they are neither in the rendered SLS nor in the state's output. #}
webstack-db-mongodb-admin_user-webstack-mongodb_user:
  webstack.mongodb_user:
    - name: admin
    - database: admin
    - passwd_pillar: webstack:secrets:mongodb_admin_password
    - roles: [{role: root, db: admin}]
    - require:
      - webstack: webstack-db-mongodb-replset-webstack-replset

{#- The app's user, as the app's URI names it (libs.jinja app_db_uri: db.user, authSource=db.name). #}
webstack-db-mongodb-app_user-webstack-mongodb_user:
  webstack.mongodb_user:
    - name: {{ db.user }}
    - database: {{ db.name }}
    - passwd_pillar: webstack:secrets:db_password
    - roles: {{ [{'role': 'readWrite', 'db': db.name}] | tojson }}
    - require:
      - webstack: webstack-db-mongodb-admin_user-webstack-mongodb_user
{%- endif %}
