{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set haproxy = webstack.lb.haproxy %}

include:
  - .package

webstack-lb-haproxy-state-dump-file-managed:
  file.managed:
    - name: /usr/local/libexec/webstack/haproxy-save-state
    - source: salt://{{ tpldir }}/files/haproxy-save-state
    # Root runs it: root's, writable by root only.
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true

{#- Reload = save every server's runtime state (drain/maint, weights) to the server-state file,
    check the config, then let the master process re-exec its workers (no dropped connections). #}
webstack-lb-haproxy-unit-file-managed:
  file.managed:
    - name: /etc/systemd/system/haproxy.service.d/webstack.conf
    - source: salt://{{ tpldir }}/files/haproxy-dropin.conf.jinja
    - template: jinja
    - makedirs: true
    - context:
        haproxy: {{ haproxy | tojson }}
    - require:
      - file: webstack-lb-haproxy-state-dump-file-managed

webstack-lb-haproxy-config-file-managed:
  file.managed:
    - name: {{ haproxy.config }}
    - source: salt://{{ tpldir }}/files/haproxy.cfg.jinja
    - template: jinja
    # Holds the stats password: readable by root and haproxy only, no diff in the state's output.
    - mode: '0640'
    - user: root
    - group: haproxy
    - show_changes: false
    - context:
        node: {{ webstack.node | tojson }}
        haproxy: {{ haproxy | tojson }}
    # Proven by haproxy itself before it replaces the live file.
    - check_cmd: /usr/sbin/haproxy -c -q -f
    - require:
      - sls: {{ tplroot }}.lb.package

{#- systemd reads a new or changed drop-in only on daemon-reload (Salt's unit-change check misses
    a drop-in added while the service runs). #}
webstack-lb-haproxy-unit-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: webstack-lb-haproxy-unit-file-managed

webstack-lb-haproxy-service-running:
  service.running:
    - name: {{ haproxy.service }}
    - enable: true
    - reload: true
    - require:
      - cmd: webstack-lb-haproxy-unit-cmd-run
    - watch:
      - file: webstack-lb-haproxy-config-file-managed
      - file: webstack-lb-haproxy-unit-file-managed
