{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set app = webstack.app %}
{%- set program = app.supervisor.program %}

{#- .package and .user before .code: Salt counts the states of an sls that another one includes
    first as that one's too (`sls:` requisites), and the reload below watches webstack.app.code
    for its own states only. #}
include:
  - .package
  - .user
  - .code

{#- /run is a tmpfs: tmpfiles.d recreates the socket directory at boot, before supervisor starts.
    setgid www-data: gunicorn's socket inherits the group, so nginx (and nothing else) can use it. #}
webstack-app-supervisor-tmpfiles-file-managed:
  file.managed:
    - name: /etc/tmpfiles.d/webstack-app.conf
    - contents: d {{ app.socket_dir }} 2750 {{ app.user }} www-data -
    - require:
      - sls: {{ tplroot }}.common.validation

webstack-app-supervisor-socket-dir-file-directory:
  file.directory:
    - name: {{ app.socket_dir }}
    - user: {{ app.user }}
    - group: www-data
    - mode: '2750'
    - require:
      - sls: {{ tplroot }}.app.package
      - sls: {{ tplroot }}.app.user

webstack-app-supervisor-check-file-managed:
  file.managed:
    - name: /usr/local/libexec/webstack/supervisor-check-program
    - source: salt://{{ tpldir }}/files/supervisor-check-program
    # Root runs it: root's, writable by root only.
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true

webstack-app-supervisor-service-running:
  service.running:
    - name: {{ app.supervisor.service }}
    - enable: true
    - require:
      - sls: {{ tplroot }}.app.package

webstack-app-supervisor-program-file-managed:
  file.managed:
    - name: {{ app.supervisor.conf_dir }}/{{ program }}.conf
    - source: salt://{{ tpldir }}/files/supervisor-program.conf.jinja
    - template: jinja
    - context:
        app: {{ app | tojson }}
    # Parsed by supervisor's own config loader before it replaces the live file.
    - check_cmd: /usr/local/libexec/webstack/supervisor-check-program
    - require:
      - file: webstack-app-supervisor-check-file-managed
      - file: webstack-app-supervisor-socket-dir-file-directory
      - sls: {{ tplroot }}.app.code

{#- `update NAME` re-reads the config and (re)starts only this program when its section changed;
    supervisord itself, and any other program it runs, is never restarted. #}
webstack-app-supervisor-program-cmd-run:
  cmd.run:
    - name: supervisorctl update {{ program }}
    - onchanges:
      - file: webstack-app-supervisor-program-file-managed
    - require:
      - service: webstack-app-supervisor-service-running

{#- Running, started if it is not. New code or config (webstack.app.code holds only the code and
    its config: the source, the venv, the install, app.json): SIGHUP, which makes gunicorn start
    new workers and retire the old ones gracefully, so requests in flight finish and no
    connection is refused. Checked on supervisord's socket in-process: no supervisorctl, no
    `unless` (see _states/webstack_app.py for why both cost seconds). #}
webstack-app-supervisor-running-webstack_app-program_running:
  webstack_app.program_running:
    - name: {{ program }}
    - socket: {{ app.supervisor.socket }}
    - watch:
      - sls: {{ tplroot }}.app.code
    - require:
      - cmd: webstack-app-supervisor-program-cmd-run
