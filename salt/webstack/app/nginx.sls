{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set nginx = webstack.app.nginx %}

include:
  - .package

webstack-app-nginx-check-file-managed:
  file.managed:
    - name: /usr/local/libexec/webstack/nginx-check-site
    - source: salt://{{ tpldir }}/files/nginx-check-site
    - mode: '0755'
    - makedirs: true
    - require:
      - sls: {{ tplroot }}.common.validation

webstack-app-nginx-site-file-managed:
  file.managed:
    - name: {{ nginx.site }}
    - source: salt://{{ tpldir }}/files/nginx-site.conf.jinja
    - template: jinja
    - context:
        node: {{ webstack.node | tojson }}
        app: {{ webstack.app | tojson }}
        pki: {{ webstack.pki | tojson }}
    # `nginx -t` on a scratch nginx.conf that includes only this site, before it goes live.
    - check_cmd: /usr/local/libexec/webstack/nginx-check-site
    - require:
      - sls: {{ tplroot }}.app.package
      # nginx -t loads the certificate and key.
      - sls: {{ tplroot }}.pki
      - file: webstack-app-nginx-check-file-managed

webstack-app-nginx-site-file-symlink:
  file.symlink:
    - name: {{ nginx.site_enabled }}
    - target: {{ nginx.site }}
    - require:
      - file: webstack-app-nginx-site-file-managed

{#- Debian's default site also listens on port 80; ours is the only one. #}
webstack-app-nginx-default-file-absent:
  file.absent:
    - name: /etc/nginx/sites-enabled/default
    - require:
      - sls: {{ tplroot }}.app.package

{#- The default site held 0.0.0.0:80; a reload cannot re-bind that port to the node's own
    addresses (the old listener still owns it), so the switch away from it takes one restart.
    Every later change is a reload. #}
webstack-app-nginx-rebind-cmd-run:
  cmd.run:
    - name: systemctl restart {{ nginx.service }}
    - onchanges:
      - file: webstack-app-nginx-default-file-absent
      # A reissued certificate is loaded by a reload.
      - sls: {{ tplroot }}.pki
    - onlyif: systemctl is-active --quiet {{ nginx.service }}
    - require:
      - file: webstack-app-nginx-site-file-symlink

webstack-app-nginx-service-running:
  service.running:
    - name: {{ nginx.service }}
    - enable: true
    - reload: true
    - require:
      - cmd: webstack-app-nginx-rebind-cmd-run
    - watch:
      - file: webstack-app-nginx-site-file-managed
      - file: webstack-app-nginx-site-file-symlink
      - file: webstack-app-nginx-default-file-absent
      # A reissued certificate is loaded by a reload.
      - sls: {{ tplroot }}.pki
