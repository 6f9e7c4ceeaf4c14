{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set app = webstack.app %}
{#- The app's system user and group, and its home (the venv and the source live there). The home
    is root's: the user may read it, never change it (root runs the venv's python). #}

webstack-app-user-group-present:
  group.present:
    - name: {{ app.group }}
    - system: true

webstack-app-user-user-present:
  user.present:
    - name: {{ app.user }}
    - gid: {{ app.group }}
    - system: true
    - home: {{ app.home }}
    - createhome: false
    - shell: /usr/sbin/nologin
    - require:
      - group: webstack-app-user-group-present

webstack-app-user-home-file-directory:
  file.directory:
    - name: {{ app.home }}
    - user: root
    - group: root
    - mode: '0755'
    - require:
      - user: webstack-app-user-user-present
