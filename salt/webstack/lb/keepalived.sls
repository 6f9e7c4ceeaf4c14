{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set keepalived = webstack.lb.keepalived %}

include:
  - .package
  - .haproxy

webstack-lb-keepalived-notify-file-managed:
  file.managed:
    - name: {{ keepalived.notify_script }}
    - source: salt://{{ tpldir }}/files/keepalived-notify
    # enable_script_security: root-owned and not writable by anyone else, or keepalived refuses it.
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true
    - require:
      - sls: {{ tplroot }}.common.validation

webstack-lb-keepalived-config-file-managed:
  file.managed:
    - name: {{ keepalived.config }}
    - source: salt://{{ tpldir }}/files/keepalived.conf.jinja
    - template: jinja
    - mode: '0640'
    - makedirs: true
    - context:
        node: {{ webstack.node | tojson }}
        keepalived: {{ keepalived | tojson }}
    # keepalived's own parser proves the file before it goes live (exit 0 valid, non-zero with the
    # offending line otherwise).
    - check_cmd: /usr/sbin/keepalived --config-test -f
    - require:
      - sls: {{ tplroot }}.lb.package
      - file: webstack-lb-keepalived-notify-file-managed

webstack-lb-keepalived-service-running:
  service.running:
    - name: {{ keepalived.service }}
    - enable: true
    # SIGHUP: keepalived re-reads its config without dropping the VIP.
    - reload: true
    - require:
      - sls: {{ tplroot }}.lb.haproxy
    - watch:
      - file: webstack-lb-keepalived-config-file-managed
