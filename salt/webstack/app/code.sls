{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- from tplroot ~ '/libs.jinja' import app_db_uri with context %}
{%- set app = webstack.app %}

include:
  - .package
  - .user

webstack-app-code-src-file-recurse:
  file.recurse:
    - name: {{ app.src }}
    - source: salt://{{ tpldir }}/files/src
    - user: {{ app.user }}
    - group: {{ app.group }}
    - dir_mode: '0755'
    - file_mode: '0644'
    - clean: true
    - exclude_pat: E@(__pycache__|\.pyc$|^tests/|\.egg-info|^build/)
    - require:
      - sls: {{ tplroot }}.app.user

{#- Debian's Flask, pymongo and gunicorn come in through --system-site-packages: the nodes need no
    package index, only the apt proxy. The app itself is pip-installed into the venv, offline. #}
webstack-app-code-venv-cmd-run:
  cmd.run:
    - name: python3 -m venv --system-site-packages {{ app.venv }}
    - runas: {{ app.user }}
    - creates: {{ app.venv }}/bin/python
    - require:
      - sls: {{ tplroot }}.app.package
      - sls: {{ tplroot }}.app.user

webstack-app-code-install-cmd-run:
  cmd.run:
    - name: >-
        {{ app.venv }}/bin/python -m pip install --quiet --no-deps --no-index
        --no-build-isolation --no-cache-dir {{ app.src }}
        && rm -rf {{ app.src }}/build {{ app.src }}/*.egg-info
    - runas: {{ app.user }}
    - cwd: {{ app.home }}
    - onchanges:
      - file: webstack-app-code-src-file-recurse
      - cmd: webstack-app-code-venv-cmd-run

webstack-app-code-config-file-managed:
  file.managed:
    - name: {{ app.config }}
    - user: root
    - group: {{ app.group }}
    # Holds the database password and the secret key: readable by the app's group only.
    - mode: '0640'
    - makedirs: true
    - contents: |
        {{ {
             'node_name': webstack.node.self.name,
             'node_address': webstack.node.self.address,
             'mongo_uri': app_db_uri(webstack),
             'db_name': webstack.node.db.name,
             'secret_key': webstack.secrets.app_secret_key,
             'server_selection_timeout_ms': app.timeouts.server_selection_ms,
             'connect_timeout_ms': app.timeouts.connect_ms,
             'socket_timeout_ms': app.timeouts.socket_ms,
           } | tojson(indent=2) | indent(8) }}
    - show_changes: false
    # The app's own loader reads the new file before it replaces the live one.
    - check_cmd: >-
        env PYTHONPATH={{ app.src }} {{ app.venv }}/bin/python -m webstack_app.checkconfig
    - require:
      - sls: {{ tplroot }}.app.user
      - cmd: webstack-app-code-venv-cmd-run
      - file: webstack-app-code-src-file-recurse
