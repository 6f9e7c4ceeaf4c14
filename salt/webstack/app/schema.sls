{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set app = webstack.app %}
{%- set sidecar = webstack.ferretdb.service if webstack.node.db.engine == 'ferretdb' else '' %}

include:
  - .package
  - .user
  - .code
  - .supervisor
{%- if sidecar %}
  - .ferretdb
{%- endif %}

webstack-app-schema-helper-file-managed:
  file.managed:
    - name: /usr/local/libexec/webstack/app-schema
    - source: salt://{{ tpldir }}/files/app-schema
    # Root runs it: root's, writable by root only.
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true
    - require:
      - sls: {{ tplroot }}.common.validation

{#- The app's collections exist before it serves, and it never creates one while serving: FerretDB
    sidecars cache the collection list (see app/webstack_app/schema.py). Reports a change only when
    it created a collection or had to refresh a stale sidecar. #}
webstack-app-schema-collections-cmd-run:
  cmd.run:
    - name: >-
        /usr/local/libexec/webstack/app-schema {{ app.user }} {{ app.venv }}/bin/python
        {{ app.src }} {{ app.config }} {{ sidecar }}
    - stateful: true
    - runas: root
    - require:
      - file: webstack-app-schema-helper-file-managed
      - sls: {{ tplroot }}.app.code
      - sls: {{ tplroot }}.app.supervisor
{%- if sidecar %}
      - sls: {{ tplroot }}.app.ferretdb
{%- endif %}
