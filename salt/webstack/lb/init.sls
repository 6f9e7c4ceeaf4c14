{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
# Load balancer: haproxy in front of every app node, keepalived holding the VIP on one lb.
include:
  - {{ tplroot }}.common
{%- if webstack.valid %}
  {#- The packages first: they install in their own process (parallel) while the node's key
      and certificate are made. #}
  - .package
  - {{ tplroot }}.pki
  - .sysctl
  - .haproxy
  - .keepalived
{%- endif %}
