{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set nginx = webstack.app.nginx %}

include:
  - .code

app-nginx-check-file-managed:
  file.managed:
    - name: /usr/local/libexec/webstack/nginx-check-site
    - source: salt://{{ tpldir }}/files/nginx-check-site
    - mode: '0755'
    - makedirs: true
    - require:
      - sls: {{ tplroot }}.common.validation

app-nginx-site-file-managed:
  file.managed:
    - name: {{ nginx.site }}
    - source: salt://{{ tpldir }}/files/nginx-site.conf.jinja
    - template: jinja
    - context:
        webstack: {{ webstack | tojson }}
    # `nginx -t` on a scratch nginx.conf that includes only this site, before it goes live.
    - check_cmd: /usr/local/libexec/webstack/nginx-check-site
    - require:
      - pkg: app-code-pkg-installed
      - file: app-nginx-check-file-managed

app-nginx-site-file-symlink:
  file.symlink:
    - name: {{ nginx.site_enabled }}
    - target: {{ nginx.site }}
    - require:
      - file: app-nginx-site-file-managed

{#- Debian's default site also listens on port 80; ours is the only one. #}
app-nginx-default-file-absent:
  file.absent:
    - name: /etc/nginx/sites-enabled/default
    - require:
      - pkg: app-code-pkg-installed

{#- The default site held 0.0.0.0:80; a reload cannot re-bind that port to the node's own
    addresses (the old listener still owns it), so the switch away from it takes one restart.
    Every later change is a reload. #}
app-nginx-rebind-cmd-run:
  cmd.run:
    - name: systemctl restart {{ nginx.service }}
    - onchanges:
      - file: app-nginx-default-file-absent
    - onlyif: systemctl is-active --quiet {{ nginx.service }}
    - require:
      - file: app-nginx-site-file-symlink

app-nginx-service-running:
  service.running:
    - name: {{ nginx.service }}
    - enable: true
    - reload: true
    - require:
      - cmd: app-nginx-rebind-cmd-run
    - watch:
      - file: app-nginx-site-file-managed
      - file: app-nginx-site-file-symlink
      - file: app-nginx-default-file-absent
