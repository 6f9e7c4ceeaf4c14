{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set haproxy = webstack.lb.haproxy %}
{%- set keepalived = webstack.lb.keepalived %}
# Removes what the lb role put on the node (webstack.lb.package, .sysctl, .haproxy, .keepalived):
# services first, then packages, files, the scripts' user, and the kernel settings back to their
# defaults.

webstack-lb-clean-service-dead:
  service.dead:
    - names:
      - {{ keepalived.service }}
      - {{ haproxy.service }}
    - enable: false

webstack-lb-clean-pkg-purged:
  pkg.purged:
    - pkgs: {{ webstack.lb.packages | tojson }}
    - require:
      - service: webstack-lb-clean-service-dead

webstack-lb-clean-file-absent:
  file.absent:
    - names:
      - /etc/systemd/system/haproxy.service.d/webstack.conf
      - /usr/local/libexec/webstack/haproxy-save-state
      - {{ haproxy.config }}
      - {{ haproxy.server_state_file }}
      - {{ keepalived.config }}
      - {{ keepalived.notify_script }}
      - {{ keepalived.state_file.rsplit('/', 1)[0] }}
      - /etc/tmpfiles.d/webstack-lb.conf
      - {{ webstack.sysctl_file }}
    - require:
      - pkg: webstack-lb-clean-pkg-purged

webstack-lb-clean-user-absent:
  user.absent:
    - name: {{ keepalived.script_user }}
    - require:
      - file: webstack-lb-clean-file-absent

webstack-lb-clean-group-absent:
  group.absent:
    - name: {{ keepalived.script_user }}
    - require:
      - user: webstack-lb-clean-user-absent

{#- The haproxy drop-in is gone: systemd forgets it only on daemon-reload. #}
webstack-lb-clean-unit-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: webstack-lb-clean-file-absent

{#- Each setting back to the kernel's default now (its sysctl.d file is gone above, so the next
    boot keeps the default), also out of Salt's default sysctl.d file, where releases before
    webstack.lb.sysctl had its own file wrote it. #}
{%- for key in webstack.sysctl | sort %}

webstack-lb-clean-{{ key }}-cmd-run:
  cmd.run:
    - name: sysctl -w {{ key }}={{ webstack.sysctl_defaults[key] }}
    - unless: test "$(sysctl -n {{ key }})" = "{{ webstack.sysctl_defaults[key] }}"
    - require:
      - file: webstack-lb-clean-file-absent

webstack-lb-clean-{{ key }}-file-replace:
  file.replace:
    - name: {{ salt['sysctl.default_config']() }}
    - pattern: '^{{ key | regex_escape }}\s*=.*\n'
    - repl: ''
    - ignore_if_missing: true
{%- endfor %}
