{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{#- The lb's packages (haproxy, keepalived, arping), for both its services. #}

webstack-lb-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ webstack.lb.packages | tojson }}
    - install_recommends: {{ webstack.pkg.install_recommends | tojson }}
    - require:
      - sls: {{ tplroot }}.common.validation
