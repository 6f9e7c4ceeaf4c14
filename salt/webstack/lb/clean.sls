{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
# Removes what the lb role installed: services first, then packages and managed files.

webstack-lb-clean-service-dead:
  service.dead:
    - names:
      - {{ webstack.lb.keepalived.service }}
      - {{ webstack.lb.haproxy.service }}
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
      - {{ webstack.lb.keepalived.notify_script }}
      - {{ webstack.lb.keepalived.state_file }}
      - {{ webstack.lb.haproxy.server_state_file }}
    - require:
      - pkg: webstack-lb-clean-pkg-purged
