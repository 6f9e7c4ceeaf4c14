{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{#- ip_nonlocal_bind lets haproxy bind the VIP on a backup lb, so a takeover needs no restart. #}
{%- for key, value in webstack.sysctl | dictsort %}

webstack-lb-sysctl-{{ key }}-sysctl-present:
  sysctl.present:
    - name: {{ key }}
    - value: {{ value }}
    - config: {{ webstack.sysctl_file }}
    - require:
      - sls: {{ tplroot }}.common.validation
{%- endfor %}
