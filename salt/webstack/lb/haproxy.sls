{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set haproxy = webstack.lb.haproxy %}
{%- set pki = webstack.pki %}
{#- The VIP's certificate: the site's own from pillar when it brings one, else this lb's site-CA
    certificate (its names include the VIP). haproxy finds the key beside it (.crt -> .key). #}
{%- set own_certificate = webstack.secrets.get('vip_certificate') and webstack.secrets.get('vip_private_key') %}
{%- set vip_certificate = haproxy.tls.dir ~ '/vip.crt' if own_certificate else pki.cert %}

include:
  - .package
  - {{ tplroot }}.pki
{%- if own_certificate %}

webstack-lb-haproxy-tls-dir-file-directory:
  file.directory:
    - name: {{ haproxy.tls.dir }}
    - user: root
    - group: root
    - mode: '0700'

{#- Read by haproxy as root before it drops privileges: root only. #}
webstack-lb-haproxy-tls-certificate-file-managed:
  file.managed:
    - name: {{ vip_certificate }}
    - contents_pillar: webstack:secrets:vip_certificate
    - mode: '0600'
    - show_changes: false
    - require:
      - file: webstack-lb-haproxy-tls-dir-file-directory

webstack-lb-haproxy-tls-key-file-managed:
  file.managed:
    - name: {{ haproxy.tls.dir }}/vip.key
    - contents_pillar: webstack:secrets:vip_private_key
    - mode: '0600'
    - show_changes: false
    - require:
      - file: webstack-lb-haproxy-tls-dir-file-directory
{%- endif %}

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
        certificate: {{ vip_certificate | tojson }}
        stats_certificate: {{ pki.cert | tojson }}
        pki: {{ pki | tojson }}
    # Proven by haproxy itself (certificates loaded) before it replaces the live file.
    - check_cmd: /usr/sbin/haproxy -c -q -f
    - require:
      - sls: {{ tplroot }}.lb.package
      - sls: {{ tplroot }}.pki
{%- if own_certificate %}
      - file: webstack-lb-haproxy-tls-certificate-file-managed
      - file: webstack-lb-haproxy-tls-key-file-managed
{%- endif %}

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
      # A reissued certificate is loaded by a reload.
      - sls: {{ tplroot }}.pki
{%- if own_certificate %}
      - file: webstack-lb-haproxy-tls-certificate-file-managed
      - file: webstack-lb-haproxy-tls-key-file-managed
{%- endif %}
