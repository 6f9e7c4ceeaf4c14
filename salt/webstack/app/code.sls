{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set app = webstack.app %}

include:
  - .package
  - .user

{#- The code and the venv belong to root, not to the app's user: root runs the venv's python (the
    install, the config check), so the user gunicorn runs as must not be able to change what
    runs. The app writes nowhere here (its socket is in app.socket_dir, its log goes to
    supervisor). #}
webstack-app-code-src-file-recurse:
  file.recurse:
    - name: {{ app.src }}
    - source: salt://{{ tpldir }}/files/src
    - user: root
    - group: root
    - dir_mode: '0755'
    - file_mode: '0644'
    - clean: true
    - exclude_pat: E@(__pycache__|\.pyc$|^tests/|\.egg-info|^build/)
    - require:
      - sls: {{ tplroot }}.app.user

{#- Debian's Flask, pymongo and gunicorn come in through --system-site-packages: the nodes need no
    package index, only the apt proxy. The app itself is pip-installed into the venv, offline.
    The venv gets no pip of its own (ensurepip took 6 s of each node's converge, measured): the
    install runs Debian's pip wheel (python3-pip-whl, a dependency of python3-venv) with the
    venv's python, which installs into that venv. #}
webstack-app-code-venv-webstack_app-venv:
  webstack_app.venv:
    - name: {{ app.venv }}
    - python: python3
    - system_site_packages: true
    - require:
      - sls: {{ tplroot }}.app.package
      - sls: {{ tplroot }}.app.user

{#- A venv made by an earlier release (as the app's user) is handed to root; modes stay (the
    venv's own: nothing writable by group or others). #}
webstack-app-code-venv-file-directory:
  file.directory:
    - name: {{ app.venv }}
    - user: root
    - group: root
    - mode: '0755'
    - recurse: [user, group]
    - require:
      - webstack_app: webstack-app-code-venv-webstack_app-venv

webstack-app-code-install-cmd-run:
  cmd.run:
    - name: >-
        set -- {{ app.pip_wheels }}/pip-*.whl &&
        {{ app.venv }}/bin/python "$1/pip" install --quiet --no-deps --no-index
        --no-build-isolation --no-cache-dir {{ app.src }}
        && rm -rf {{ app.src }}/build {{ app.src }}/*.egg-info
    - cwd: {{ app.home }}
    - onchanges:
      - file: webstack-app-code-src-file-recurse
      - webstack_app: webstack-app-code-venv-webstack_app-venv
    - require:
      - file: webstack-app-code-venv-file-directory

webstack-app-code-config-file-managed:
  file.managed:
    - name: {{ app.config }}
    - source: salt://{{ tpldir }}/files/app.json.jinja
    - template: jinja
    - context:
        node: {{ webstack.node | tojson }}
        app: {{ app | tojson }}
        ferretdb_listen: {{ webstack.ferretdb.listen | tojson }}
    - user: root
    - group: {{ app.group }}
    # Holds the database password and the secret key: readable by root and the app's group only,
    # no diff in the state's output.
    - mode: '0640'
    - makedirs: true
    - show_changes: false
    # The app's own loader reads the new file before it replaces the live one.
    - check_cmd: >-
        env PYTHONPATH={{ app.src }} {{ app.venv }}/bin/python -m webstack_app.checkconfig
    - require:
      - sls: {{ tplroot }}.app.user
      - webstack_app: webstack-app-code-venv-webstack_app-venv
      - file: webstack-app-code-src-file-recurse
