{%- set tplroot = tpldir.split('/')[0] %}
{%- from tplroot ~ '/map.jinja' import webstack with context %}
{%- set keepalived = webstack.lb.keepalived %}
{%- set state_dir = keepalived.state_file.rsplit('/', 1)[0] %}

include:
  - .package
  - .haproxy

{#- keepalived runs its scripts (the haproxy tracking, the notify script) as this user, which owns
    nothing but the notify script's state directory. #}
webstack-lb-keepalived-script_user-group-present:
  group.present:
    - name: {{ keepalived.script_user }}
    - system: true
    - require:
      - sls: {{ tplroot }}.common.validation

webstack-lb-keepalived-script_user-user-present:
  user.present:
    - name: {{ keepalived.script_user }}
    - gid: {{ keepalived.script_user }}
    - system: true
    - home: /nonexistent
    - createhome: false
    - shell: /usr/sbin/nologin
    - require:
      - group: webstack-lb-keepalived-script_user-group-present

{#- /run is a tmpfs: tmpfiles.d recreates the state directory at boot, before keepalived starts.
    The directory only: what the notify script leaves there (and any file an earlier release left
    as root) is the script user's. #}
webstack-lb-keepalived-tmpfiles-file-managed:
  file.managed:
    - name: /etc/tmpfiles.d/webstack-lb.conf
    - contents: d {{ state_dir }} 0755 {{ keepalived.script_user }} {{ keepalived.script_user }} -
    - require:
      - user: webstack-lb-keepalived-script_user-user-present

webstack-lb-keepalived-state-file-directory:
  file.directory:
    - name: {{ state_dir }}
    - user: {{ keepalived.script_user }}
    - group: {{ keepalived.script_user }}
    - mode: '0755'
    - recurse: [user, group]
    - require:
      - user: webstack-lb-keepalived-script_user-user-present

webstack-lb-keepalived-notify-file-managed:
  file.managed:
    - name: {{ keepalived.notify_script }}
    - source: salt://{{ tpldir }}/files/keepalived-notify
    # enable_script_security: root-owned and not writable by anyone else, or keepalived refuses it.
    - user: root
    - group: root
    - mode: '0755'
    - makedirs: true
    - require:
      - sls: {{ tplroot }}.common.validation

webstack-lb-keepalived-config-file-managed:
  file.managed:
    - name: {{ keepalived.config }}
    - source: salt://{{ tpldir }}/files/keepalived.conf.jinja
    - template: jinja
    - mode: '0640'
    - makedirs: true
    - context:
        node: {{ webstack.node | tojson }}
        keepalived: {{ keepalived | tojson }}
    # keepalived's own parser proves the file before it goes live (exit 0 valid, non-zero with the
    # offending line otherwise). As PID 1 of a PID namespace of its own: after checking a script
    # as a non-root script_user, keepalived 2.2.7's config test takes a parent pid other than 0
    # for its main process's death and kills itself (exit 143); a parent outside the namespace
    # reads as 0 (keepalived issue 2617, fixed after 2.2.7).
    - check_cmd: unshare --pid --fork --kill-child /usr/sbin/keepalived --config-test -f
    - require:
      - sls: {{ tplroot }}.lb.package
      - file: webstack-lb-keepalived-notify-file-managed
      - user: webstack-lb-keepalived-script_user-user-present

webstack-lb-keepalived-service-running:
  service.running:
    - name: {{ keepalived.service }}
    - enable: true
    # SIGHUP: keepalived re-reads its config without dropping the VIP.
    - reload: true
    - require:
      - sls: {{ tplroot }}.lb.haproxy
      - file: webstack-lb-keepalived-state-file-directory
    - watch:
      - file: webstack-lb-keepalived-config-file-managed
