{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
# Load balancer: haproxy in front of every app node, keepalived holding the VIP on one lb.
include:
  - {{ tplroot }}.common
{%- if webstack.valid %}
  - {{ tplroot }}.pki
  - .package
  - .sysctl
  - .haproxy
  - .keepalived
{%- endif %}
