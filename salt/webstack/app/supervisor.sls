{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set app = webstack.app %}
{%- set program = app.supervisor.program %}

include:
  - .code

{#- /run is a tmpfs: tmpfiles.d recreates the socket directory at boot, before supervisor starts.
    setgid www-data: gunicorn's socket inherits the group, so nginx (and nothing else) can use it. #}
app-supervisor-tmpfiles-file-managed:
  file.managed:
    - name: /etc/tmpfiles.d/webstack-app.conf
    - contents: d {{ app.socket_dir }} 2750 {{ app.user }} www-data -
    - require:
      - sls: {{ tplroot }}.common.validation

app-supervisor-socket-dir-file-directory:
  file.directory:
    - name: {{ app.socket_dir }}
    - user: {{ app.user }}
    - group: www-data
    - mode: '2750'
    - require:
      - user: app-code-user-present
      - pkg: app-code-pkg-installed

app-supervisor-check-file-managed:
  file.managed:
    - name: /usr/local/libexec/webstack/supervisor-check-program
    - source: salt://{{ tpldir }}/files/supervisor-check-program
    - mode: '0755'
    - makedirs: true

app-supervisor-service-running:
  service.running:
    - name: {{ app.supervisor.service }}
    - enable: true
    - require:
      - pkg: app-code-pkg-installed

app-supervisor-program-file-managed:
  file.managed:
    - name: {{ app.supervisor.conf_dir }}/{{ program }}.conf
    - source: salt://{{ tpldir }}/files/supervisor-program.conf.jinja
    - template: jinja
    - context:
        app: {{ app | tojson }}
    # Parsed by supervisor's own config loader before it replaces the live file.
    - check_cmd: /usr/local/libexec/webstack/supervisor-check-program
    - require:
      - file: app-supervisor-check-file-managed
      - file: app-supervisor-socket-dir-file-directory
      - cmd: app-code-install-cmd-run

{#- `update NAME` re-reads the config and (re)starts only this program when its section changed;
    supervisord itself, and any other program it runs, is never restarted. #}
app-supervisor-program-cmd-run:
  cmd.run:
    - name: supervisorctl update {{ program }}
    - onchanges:
      - file: app-supervisor-program-file-managed
    - require:
      - service: app-supervisor-service-running

{#- New code or config: HUP makes gunicorn start new workers and retire the old ones gracefully,
    so requests in flight finish and no connection is refused. #}
app-supervisor-reload-cmd-run:
  cmd.run:
    - name: supervisorctl signal HUP {{ program }}
    - onchanges:
      - cmd: app-code-install-cmd-run
      - file: app-code-config-file-managed
    - onlyif: supervisorctl status {{ program }} | grep -q RUNNING
    - require:
      - cmd: app-supervisor-program-cmd-run

app-supervisor-running-cmd-run:
  cmd.run:
    - name: supervisorctl start {{ program }}
    - unless: supervisorctl status {{ program }} | grep -q RUNNING
    - require:
      - cmd: app-supervisor-reload-cmd-run
      - file: app-code-config-file-managed
