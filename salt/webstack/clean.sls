{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
# Removes what webstack put on this node: the clean of each role the topology gives it (data
# included on a db node), then its TLS identity, then common's. Only ever run it on purpose.
include:
{%- for role in webstack.node.roles %}
  - {{ tplroot }}.{{ role }}.clean
{%- endfor %}
{#- Every role node has a TLS identity (webstack.pki); removed once its services are gone. #}
{%- if webstack.node.roles %}
  - {{ tplroot }}.pki.clean
{%- endif %}
  - {{ tplroot }}.common.clean
