{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set ferretdb = webstack.ferretdb %}

webstack-app-ferretdb-user-present:
  user.present:
    - name: {{ ferretdb.user }}
    - system: true
    - home: /var/lib/ferretdb
    - createhome: false
    - shell: /usr/sbin/nologin
    - require:
      - sls: {{ tplroot }}.common.validation

webstack-app-ferretdb-binary-file-managed:
  file.managed:
    - name: {{ ferretdb.binary }}
    - source: {{ ferretdb.source }}
  {%- if ferretdb.source_hash %}
    - source_hash: {{ ferretdb.source_hash }}
  {%- endif %}
    - mode: '0755'
    - require:
      - sls: {{ tplroot }}.common.validation

webstack-app-ferretdb-unit-file-managed:
  file.managed:
    - name: /etc/systemd/system/{{ ferretdb.service }}.service
    - source: salt://{{ tpldir }}/files/ferretdb.service.jinja
    - template: jinja
    - context:
        node: {{ webstack.node | tojson }}
        ferretdb: {{ ferretdb | tojson }}
        pki: {{ webstack.pki | tojson }}
    - require:
      - file: webstack-app-ferretdb-binary-file-managed
      - user: webstack-app-ferretdb-user-present
      # It verifies PostgreSQL's certificate against the site CA.
      - sls: {{ tplroot }}.pki

webstack-app-ferretdb-service-running:
  service.running:
    - name: {{ ferretdb.service }}
    - enable: true
    - watch:
      - file: webstack-app-ferretdb-binary-file-managed
      - file: webstack-app-ferretdb-unit-file-managed
