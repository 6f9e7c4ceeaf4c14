{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set etcd = webstack.etcd %}

{#- etcd on every db node of a Patroni cluster (engine ferretdb, 3+ db nodes): the DCS that holds
    Patroni's leader lock. Debian's package starts a throw-away single-member etcd on localhost at
    install; the drop-in points the unit at our config file, whose data-dir is a new one, so that
    throw-away member never joins anything. #}
include:
  - .package

{#- etcd reads this node's private key (group-readable, 0640): its peers and clients must show a
    site-CA certificate, and it shows its own. #}
webstack-db-etcd-key_group-group-present:
  group.present:
    - name: {{ webstack.pki.key_group }}
    - addusers: [etcd]
    - require:
      - sls: {{ tplroot }}.db.package
      - sls: {{ tplroot }}.pki

webstack-db-etcd-data-file-directory:
  file.directory:
    - name: {{ etcd.data_dir }}
    - user: etcd
    - group: etcd
    - mode: '0700'
    - require:
      - sls: {{ tplroot }}.db.package

webstack-db-etcd-config-file-managed:
  file.managed:
    - name: {{ etcd.config }}
    - source: salt://{{ tpldir }}/files/etcd.yml.jinja
    - template: jinja
    - context:
        node: {{ webstack.node | tojson }}
        etcd: {{ etcd | tojson }}
        pki: {{ webstack.pki | tojson }}
    - user: root
    - group: etcd
    - mode: '0640'
    - makedirs: true
    # etcd has no config-test flag: the YAML must at least parse into a mapping naming this
    # member, its data-dir and the initial cluster before it replaces the live file.
    - check_cmd: >-
        {{ grains.pythonexecutable }} -c "import sys, yaml;
        c = yaml.safe_load(open(sys.argv[1])) or {};
        keys = ('name', 'data-dir', 'listen-peer-urls', 'listen-client-urls', 'initial-cluster');
        missing = [k for k in keys if not c.get(k)];
        sys.exit('etcd config: missing ' + ', '.join(missing) if missing else 0)"
    - require:
      - sls: {{ tplroot }}.db.package

webstack-db-etcd-unit-file-managed:
  file.managed:
    - name: {{ etcd.dropin }}
    - source: salt://{{ tpldir }}/files/etcd-dropin.conf.jinja
    - template: jinja
    - context:
        etcd: {{ etcd | tojson }}
    - makedirs: true
    - require:
      - sls: {{ tplroot }}.db.package

{#- systemd reads a new or changed drop-in only on daemon-reload; Salt's own unit-change check
    misses a drop-in created while the service runs (measured: the restart kept the old
    environment), so reload explicitly before the restart. #}
webstack-db-etcd-unit-cmd-run:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: webstack-db-etcd-unit-file-managed

{#- etcd cannot reload: a changed config restarts it. #}
webstack-db-etcd-service-running:
  service.running:
    - name: {{ etcd.service }}
    - enable: true
    - require:
      - file: webstack-db-etcd-data-file-directory
      - cmd: webstack-db-etcd-unit-cmd-run
      - group: webstack-db-etcd-key_group-group-present
    - watch:
      - file: webstack-db-etcd-config-file-managed
      - file: webstack-db-etcd-unit-file-managed
