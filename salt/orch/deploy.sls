{#- Rolling, zero-downtime app deploy:

      salt-run state.orchestrate orch.deploy
      salt-run state.orchestrate orch.deploy pillar='deploy: {nodes: [app2], timeout: 300}'

    For each app node in turn (topology order): drain it on every lb, apply the app role, wait
    until its health endpoint answers and every lb's health check sees it up, then put it back in
    service. The steps form one requisite chain and every step is failhard: when one fails the
    run stops there, the failed node stays drained and the nodes after it are left untouched.

    Options (pillar `deploy`, all optional): nodes (a subset of the app nodes), sls (default
    webstack.app), timeout (seconds a node may take to come back, default 120), drain_wait
    (seconds to let its sessions end once drained, default 10). #}
{#- The map's raw pillar parts only (topology, deploy): the minion map is not computed on the master.
    The deploy order (app nodes in rolling order, the lbs that drain them) is derived from the
    topology by the runner webstack.derive (_runners, with the topology utils from _utils). #}
{%- from 'webstack/map.jinja' import topology, deploy as options with context %}
{%- set sls = options.get('sls', 'webstack.app') %}
{%- set timeout = options.get('timeout', 120) | int %}
{%- set drain_wait = options.get('drain_wait', 10) | int %}
{%- set derived = salt['saltutil.runner']('webstack.derive', kwarg={'topology': topology}) %}
{%- if derived is not mapping %}
  {%- set derived = {'valid': False, 'errors': ['webstack.derive: %s' % derived]} %}
{%- endif %}
{%- set order = derived.get('deploy_order', {'lb': [], 'app': []}) %}
{%- set lbs = order.lb %}
{%- set apps = [] %}
{%- for app in order.app if not options.get('nodes') or app in options.nodes %}
  {%- do apps.append(app) %}
{%- endfor %}

{%- if not derived.get('valid') %}

webstack-orch-deploy-nothing-test-fail_without_changes:
  test.fail_without_changes:
    - name: >-
        nothing to deploy: the topology (pillar webstack:topology) is invalid:
        {{ derived.get('errors', ['no answer from the runner webstack.derive']) | join('; ') }}
    - failhard: true
{%- elif not lbs or not apps %}

webstack-orch-deploy-nothing-test-fail_without_changes:
  test.fail_without_changes:
    - name: >-
        nothing to deploy: the topology (pillar webstack:topology) names
        {{ lbs | length }} lb and {{ apps | length }} app node(s)
        {%- if options.get('nodes') %} among {{ options.nodes | join(', ') }}{% endif %}
    - failhard: true
{%- else %}
  {%- set previous = {'id': None} %}
  {%- for app in apps %}

webstack-orch-deploy-{{ app }}-drain-salt-function:
  salt.function:
    - name: webstack.set_server_state
    - tgt: {{ lbs | join(',') }}
    - tgt_type: list
    - arg:
      - {{ app }}
      - drain
    - kwarg:
        wait: {{ drain_wait }}
    - expect_minions: true
    - failhard: true
    {%- if previous.id %}
    - require:
      - salt: {{ previous.id }}
    {%- endif %}

webstack-orch-deploy-{{ app }}-apply-salt-state:
  salt.state:
    - tgt: {{ app }}
    - sls: {{ sls }}
    - expect_minions: true
    - failhard: true
    - require:
      - salt: webstack-orch-deploy-{{ app }}-drain-salt-function

webstack-orch-deploy-{{ app }}-healthy-salt-function:
  salt.function:
    - name: webstack.wait_healthy
    - tgt: {{ app }}
    - kwarg:
        timeout: {{ timeout }}
    - expect_minions: true
    - failhard: true
    - require:
      - salt: webstack-orch-deploy-{{ app }}-apply-salt-state

webstack-orch-deploy-{{ app }}-seen-up-salt-function:
  salt.function:
    - name: webstack.wait_server
    - tgt: {{ lbs | join(',') }}
    - tgt_type: list
    - arg:
      - {{ app }}
    - kwarg:
        timeout: {{ timeout }}
    - expect_minions: true
    - failhard: true
    - require:
      - salt: webstack-orch-deploy-{{ app }}-healthy-salt-function

webstack-orch-deploy-{{ app }}-ready-salt-function:
  salt.function:
    - name: webstack.set_server_state
    - tgt: {{ lbs | join(',') }}
    - tgt_type: list
    - arg:
      - {{ app }}
      - ready
    - expect_minions: true
    - failhard: true
    - require:
      - salt: webstack-orch-deploy-{{ app }}-seen-up-salt-function
    {%- do previous.update({'id': 'webstack-orch-deploy-' ~ app ~ '-ready-salt-function'}) %}
  {%- endfor %}
{%- endif %}
