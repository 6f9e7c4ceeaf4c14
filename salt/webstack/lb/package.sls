{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{#- The lb's packages (haproxy, keepalived, arping), for both its services. #}

webstack-lb-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ webstack.lb.packages | tojson }}
    - install_recommends: {{ webstack.pkg.install_recommends | tojson }}
    - cache_valid_time: {{ webstack.pkg.cache_valid_time | int }}
    # In its own process while the states that do not need it (this node's key and certificate,
    # users, files) go on: nothing else here runs apt, and what needs the packages requires this.
    - parallel: true
    - require:
      - sls: {{ tplroot }}.common.validation
