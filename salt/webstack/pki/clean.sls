{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set pki = webstack.pki %}
# Removes this node's TLS identity (key, certificate, CA certificate). The CA minion's own CA is
# never removed by a clean: a new CA would make every node's certificate worthless at once.

webstack-pki-clean-dir-file-absent:
  file.absent:
    - name: {{ pki.dir }}
