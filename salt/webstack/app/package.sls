{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{#- Everything the app node runs from Debian: nginx, supervisor, gunicorn and the app's libraries. #}

webstack-app-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ webstack.app.packages | tojson }}
    - install_recommends: {{ webstack.pkg.install_recommends | tojson }}
    - require:
      - sls: {{ tplroot }}.common.validation
