"""Unit tests of _modules/webstack_pki.py: this node's certificates and their expiry, read from
real certificate files (a test site CA)."""

import datetime

import pytest
from support.salt_modules import UTILS, load
from support.site_pki import SitePki

pki = load("_modules", "webstack_pki")


@pytest.fixture
def site(tmp_path):
    return SitePki(tmp_path / "pki")


def lookup_of(site, node):
    return {"webstack": {"lookup": {"pki": {"cert": str(node.cert), "ca_cert": str(site.ca)}}}}


def test_a_certificate_is_described_with_its_names_and_days_left(site):
    node = site.issue("lb1", addresses=("10.0.0.11", "10.0.0.100"), days=60)
    seen = pki.describe(str(node.cert))
    assert seen["subject"] == "lb1" and seen["issuer"] == "test site CA"
    assert seen["names"] == ["DNS:lb1", "IP:10.0.0.11", "IP:10.0.0.100"]
    assert 59 < seen["days_left"] <= 60 and seen["expires_soon"] is False
    end = datetime.datetime.fromisoformat(seen["not_after"])
    assert end.tzinfo is not None


def test_one_inside_the_warning_window_expires_soon(site):
    node = site.issue("db1", days=10)
    assert pki.describe(str(node.cert))["expires_soon"] is True
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=11)
    assert pki.describe(str(node.cert), now=later)["days_left"] < 0


def test_a_missing_or_broken_file_is_an_error_not_a_traceback(site, tmp_path):
    assert "No such file" in pki.describe(str(tmp_path / "nope.crt"))["error"]
    (tmp_path / "junk.crt").write_text("not a certificate\n")
    assert "junk.crt" in pki.describe(str(tmp_path / "junk.crt"))["error"]


def test_certificates_lists_the_files_this_node_has(site, tmp_path):
    node = site.issue("app1", days=90)
    pki.__utils__ = UTILS
    pki.__pillar__ = lookup_of(site, node)
    found = pki.certificates()
    # The CA minion's CA and an lb's own VIP certificate are not on this node: not listed.
    assert set(found) == {"node", "ca"}
    assert found["node"]["path"] == str(node.cert) and found["node"]["subject"] == "app1"
    assert found["ca"]["subject"] == "test site CA"
    nowhere = {"cert": str(tmp_path / "x"), "ca_cert": str(tmp_path / "y")}
    pki.__pillar__ = {"webstack": {"lookup": {"pki": nowhere}}}
    assert pki.certificates() == {}
