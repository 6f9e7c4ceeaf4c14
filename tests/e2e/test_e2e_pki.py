"""
A node's certificate in the lab: a current one is judged on the node alone (no request to the CA
minion), so the node's check agrees with the certificates the site CA really issues; one the
check refuses is reissued by the CA, and the node serves with the new one.
"""

CERT_STATE = "webstack-pki-certificate-webstack_pki-certificate_managed"
KEY_STATE = "webstack-pki-key-webstack_pki-private_key_managed"
CERT = "/etc/webstack/pki/node.crt"


def _states(lab, node):
    states = lab.salt(node, "state.apply", timeout=600)[node]
    assert isinstance(states, dict), states
    failed = {k: v["comment"] for k, v in states.items() if v["result"] is False}
    assert not failed, failed
    return {s["__id__"]: s for s in states.values() if s["__id__"] in (CERT_STATE, KEY_STATE)}


def _certificate_state(lab, node):
    return _states(lab, node)[CERT_STATE]


def _sh(lab, node, script):
    return lab.salt(node, "cmd.run", script, "python_shell=True")[node]


def test_a_current_key_and_certificate_are_judged_on_the_node(lab):
    node = lab.apps[-1]
    states = _states(lab, node)
    assert states[CERT_STATE]["changes"] == {} and states[KEY_STATE]["changes"] == {}
    comment = states[CERT_STATE]["comment"]
    assert comment.startswith("The certificate is current"), comment
    comment = states[KEY_STATE]["comment"]
    assert comment.startswith("The private key is current"), comment


def test_a_certificate_from_another_issuer_is_reissued_by_the_site_ca(lab):
    node = lab.apps[-1]
    # Same key, same names, valid for 90 days: only the issuer is wrong (self-signed).
    _sh(
        lab,
        node,
        f"openssl req -x509 -new -key /etc/webstack/pki/node.key -subj /CN={node} "
        f"-addext subjectAltName=DNS:{node},IP:{lab.address(node)} -days 90 -out {CERT}",
    )
    # And the key's mode widened: the key state's check finds it and Salt's x509 state restores it.
    _sh(lab, node, "chmod 0644 /etc/webstack/pki/node.key")
    assert "self-signed" in _sh(
        lab, node, f"openssl verify -CAfile /etc/webstack/pki/ca.crt {CERT} 2>&1"
    )
    state = _certificate_state(lab, node)
    assert state["changes"], state
    assert (
        _sh(lab, node, f"openssl verify -CAfile /etc/webstack/pki/ca.crt {CERT}") == f"{CERT}: OK"
    )
    assert _sh(lab, node, "stat -c %a:%U:%G /etc/webstack/pki/node.key") == "640:root:ssl-cert"
    # Judged current again on the next run, and the node still serves through the VIP.
    assert _certificate_state(lab, node)["changes"] == {}
    assert node in lab.serving_apps(tries=20)
