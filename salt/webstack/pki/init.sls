{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set pki = webstack.pki %}
{%- set node = webstack.node %}
# This node's TLS identity: the site CA's certificate (from the mine, where the CA minion
# publishes it), a private key made here and never sent anywhere, and a certificate the CA signs
# through this node's own signing policy (its names fixed by the CA from the topology), reissued
# by state.apply when fewer than pki.days_remaining days are left.
include:
  - {{ tplroot }}.common
{%- if webstack.valid %}

webstack-pki-key-group-group-present:
  group.present:
    - name: {{ pki.key_group }}
    - system: true

webstack-pki-dir-file-directory:
  file.directory:
    - name: {{ pki.dir }}
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true

webstack-pki-ca-certificate-webstack_pki-ca_certificate:
  webstack_pki.ca_certificate:
    - name: {{ pki.ca_cert }}
    - ca_server: {{ node.pki.ca_minion }}
    - mine_function: {{ pki.ca.mine_function }}
    - timeout: {{ pki.ca_wait }}
    - require:
      - file: webstack-pki-dir-file-directory

{#- A key made here (x509.create_private_key) when a check made here finds it missing or not as
    wanted; one with only the wrong owner or mode is kept (see _states/webstack_pki.py). #}
webstack-pki-key-webstack_pki-private_key_managed:
  webstack_pki.private_key_managed:
    - name: {{ pki.key }}
    - algo: {{ pki.key_algo }}
    - keysize: {{ pki.key_size }}
    - user: root
    - group: {{ pki.key_group }}
    - mode: '0640'
    - require:
      - group: webstack-pki-key-group-group-present
      - file: webstack-pki-dir-file-directory

{#- Issued by the CA minion (x509.create_certificate with ca_server) when a check made on this
    node finds the certificate not current, and checked the same way before it is written (see
    _states/webstack_pki.py: Salt's x509 state alone asks the CA minion for the policy on every
    run). #}
webstack-pki-certificate-webstack_pki-certificate_managed:
  webstack_pki.certificate_managed:
    - name: {{ pki.cert }}
    - ca_server: {{ node.pki.ca_minion }}
    - signing_policy: webstack-{{ node.name }}
    - private_key: {{ pki.key }}
    - ca_cert: {{ pki.ca_cert }}
    - CN: {{ node.name }}
    - alt_names: {{ node.pki.names[node.name] | tojson }}
    - days_remaining: {{ pki.days_remaining }}
    - check_policy: {{ pki.check_policy | tojson }}
    # A node new to the topology may ask before the CA minion has loaded its new policy.
    - retry:
        attempts: 10
        interval: 6
    - user: root
    - group: root
    - mode: '0644'
    - require:
      - webstack_pki: webstack-pki-key-webstack_pki-private_key_managed
      - webstack_pki: webstack-pki-ca-certificate-webstack_pki-ca_certificate
{%- endif %}
