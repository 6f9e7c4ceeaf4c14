{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set ca = webstack.pki.ca %}
# The site CA, on the master host's own minion (the topology's master.minion_id): its key stays
# here (root 0400); its certificate is published in the mine (pillar mine_functions) for every
# node; it signs each node's certificate through that node's signing policy (pillar
# x509_signing_policies, derived from the topology). Nothing else runs on this minion.
include:
  - {{ tplroot }}.common
{%- if webstack.valid %}

webstack-pki-ca-policies-webstack_pki-signing_policies_loaded:
  webstack_pki.signing_policies_loaded:
    - name: {{ webstack.node.topology | tojson }}

webstack-pki-ca-dir-file-directory:
  file.directory:
    - name: {{ ca.dir }}
    - user: root
    - group: root
    - mode: '0700'
    - makedirs: true

webstack-pki-ca-key-x509-private_key_managed:
  x509.private_key_managed:
    - name: {{ ca.key }}
    - algo: ec
    - keysize: 384
    - mode: '0400'
    - require:
      - file: webstack-pki-ca-dir-file-directory

webstack-pki-ca-certificate-x509-certificate_managed:
  x509.certificate_managed:
    - name: {{ ca.cert }}
    - signing_private_key: {{ ca.key }}
    - CN: {{ ('webstack site CA ' ~ webstack.node.topology) | tojson }}
    - basicConstraints: 'critical, CA:true, pathlen:0'
    - keyUsage: 'critical, cRLSign, keyCertSign'
    - subjectKeyIdentifier: hash
    - days_valid: {{ ca.days_valid }}
    - days_remaining: {{ ca.days_remaining }}
    - mode: '0644'
    - require:
      - x509: webstack-pki-ca-key-x509-private_key_managed

{#- The nodes read the certificate from the mine: publish it as soon as it is (re)made. #}
webstack-pki-ca-mine-module-run:
  module.run:
    - mine.update: []
    - onchanges:
      - x509: webstack-pki-ca-certificate-x509-certificate_managed
{%- endif %}
