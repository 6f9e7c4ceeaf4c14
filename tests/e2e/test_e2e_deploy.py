"""The rolling deploy (salt/orch/deploy.sls) under a request stream: no request fails."""

import json
import re
import subprocess
import time

from e2e_lab import Load, config, lxc
from support.orch_deploy import STEPS


def test_rolling_deploy_under_load_fails_no_request(healthy):
    lab = healthy
    with Load(lab.vip_url + "api/whoami", workers=4, max_seconds=600, max_requests=10**6) as load:
        time.sleep(2)
        started = time.monotonic()
        proc = subprocess.run(
            lxc.attach_args(
                config.MASTER_NAME,
                "salt-run",
                "--out=json",
                "state.orchestrate",
                "orch.deploy",
            ),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        seconds = time.monotonic() - started
        time.sleep(2)
    output = proc.stdout[-6000:] + proc.stderr[-3000:]
    print(f"rolling deploy: {seconds:.1f}s, {load.total} requests, {dict(load.statuses)}")
    assert proc.returncode == 0, output
    states = {}
    # Salt's warnings (unclosed MasterEvent…) may share the stream: the JSON starts a line with "{".
    text = proc.stdout + "\n" + proc.stderr
    start = re.search(r"^\{", text, re.M)
    assert start, output
    document, _ = json.JSONDecoder().raw_decode(text[start.start() :])
    for ret in document["data"].values():
        for key, state in ret.items():
            states[key.split("_|-")[1]] = state
    failed = {sid: s["comment"] for sid, s in states.items() if s["result"] is not True}
    assert not failed, failed
    order = sorted(states, key=lambda sid: states[sid]["__run_num__"])
    expected = [
        f"webstack-orch-deploy-{app}-{step}-salt-{kind}" for app in lab.apps for step, kind in STEPS
    ]
    assert order == expected, order
    assert not load.failures, f"{len(load.failures)} failed requests, first: {load.failures[:5]}"
    assert set(load.nodes) >= set(lab.apps)
