{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set app = webstack.app %}
{%- set ferretdb = webstack.ferretdb %}
# Removes what the app role put on the node (webstack.app.package, .user, .code, .supervisor,
# .nginx, .ferretdb, .schema): the program and sidecar first, then files, users, packages.

webstack-app-clean-program-cmd-run:
  cmd.run:
    - name: >-
        rm -f {{ app.supervisor.conf_dir }}/{{ app.supervisor.program }}.conf
        && supervisorctl update {{ app.supervisor.program }}
    - onlyif: test -f {{ app.supervisor.conf_dir }}/{{ app.supervisor.program }}.conf

webstack-app-clean-service-dead:
  service.dead:
    - names:
      - {{ ferretdb.service }}
      - {{ app.nginx.service }}
      - {{ app.supervisor.service }}
    - enable: false
    - require:
      - cmd: webstack-app-clean-program-cmd-run

webstack-app-clean-file-absent:
  file.absent:
    - names:
      - {{ app.home }}
      - {{ app.config }}
      - {{ app.config.rsplit('/', 1)[0] }}
      - {{ app.socket_dir }}
      - {{ app.supervisor.conf_dir }}/{{ app.supervisor.program }}.conf
      - /var/log/supervisor/{{ app.supervisor.program }}.log
      - {{ app.nginx.site }}
      - {{ app.nginx.site_enabled }}
      - /etc/tmpfiles.d/webstack-app.conf
      - /etc/systemd/system/{{ ferretdb.service }}.service
      - {{ ferretdb.binary }}
      - /var/lib/ferretdb
      - /usr/local/libexec/webstack/nginx-check-site
      - /usr/local/libexec/webstack/supervisor-check-program
      - /usr/local/libexec/webstack/app-schema
    - require:
      - service: webstack-app-clean-service-dead

{#- The FerretDB unit is gone: systemd forgets it only on daemon-reload. #}
webstack-app-clean-unit-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: webstack-app-clean-file-absent

webstack-app-clean-user-absent:
  user.absent:
    - names:
      - {{ app.user }}
      - {{ ferretdb.user }}
    - require:
      - file: webstack-app-clean-file-absent

webstack-app-clean-group-absent:
  group.absent:
    - name: {{ app.group }}
    - require:
      - user: webstack-app-clean-user-absent

webstack-app-clean-pkg-purged:
  pkg.purged:
    - pkgs: {{ app.packages | tojson }}
    - require:
      - service: webstack-app-clean-service-dead
