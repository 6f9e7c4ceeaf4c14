{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set app = webstack.app %}
# Removes what the app role installed: the program and sidecar first, then files, user, packages.

webstack-app-clean-program-cmd-run:
  cmd.run:
    - name: >-
        rm -f {{ app.supervisor.conf_dir }}/{{ app.supervisor.program }}.conf
        && supervisorctl update {{ app.supervisor.program }}
    - onlyif: test -f {{ app.supervisor.conf_dir }}/{{ app.supervisor.program }}.conf

webstack-app-clean-service-dead:
  service.dead:
    - names:
      - {{ webstack.ferretdb.service }}
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
      - {{ app.socket_dir }}
      - {{ app.nginx.site }}
      - {{ app.nginx.site_enabled }}
      - /etc/tmpfiles.d/webstack-app.conf
      - /etc/systemd/system/{{ webstack.ferretdb.service }}.service
      - {{ webstack.ferretdb.binary }}
      - /usr/local/libexec/webstack/nginx-check-site
      - /usr/local/libexec/webstack/supervisor-check-program
    - require:
      - service: webstack-app-clean-service-dead

webstack-app-clean-user-absent:
  user.absent:
    - names:
      - {{ app.user }}
      - {{ webstack.ferretdb.user }}
    - require:
      - file: webstack-app-clean-file-absent

webstack-app-clean-pkg-purged:
  pkg.purged:
    - pkgs: [nginx-light, supervisor, gunicorn]
    - require:
      - service: webstack-app-clean-service-dead
