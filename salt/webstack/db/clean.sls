{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
# Removes what the db role installed, data included: only ever run it on purpose.

db-clean-service-dead:
  service.dead:
    - names:
      - {{ webstack.postgresql.service }}
      - {{ webstack.mongodb.service }}
    - enable: false

db-clean-pkg-purged:
  pkg.purged:
    - pkgs: {{ (webstack.postgresql.packages + [webstack.mongodb.package]) | tojson }}
    - require:
      - service: db-clean-service-dead

db-clean-file-absent:
  file.absent:
    - names:
      - {{ webstack.mongodb.config }}
      - {{ webstack.mongodb.keyfile }}
      - /etc/apt/sources.list.d/mongodb-org-{{ webstack.mongodb.version }}.list
    - require:
      - pkg: db-clean-pkg-purged
