"""The outbound guard: https and public addresses only, unless explicitly allowed."""

from __future__ import annotations

import pytest

from connections.client import RequestSpec, send
from connections.guard import address_problem, check_url
from connections.models import Outcome, RequestLog
from connections.services.audit import Actor
from tests import factories

USER = Actor(label="tester", via="user")


@pytest.fixture
def strict(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    settings.OUTBOUND_ALLOWED_HOSTS = []
    return settings


class TestCheckUrl:
    @pytest.mark.parametrize("url, words", [
        ("https://127.0.0.1/api", "loopback"),
        ("https://localhost:8443/", "loopback"),
        ("https://10.1.2.3/", "private"),
        ("https://192.168.0.10/", "private"),
        ("https://172.16.5.5/", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/", "loopback"),
        ("https://[fc00::1]/", "private"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("https://100.64.0.1/", "not a public address"),
    ])
    def test_non_public_addresses_are_refused(self, strict, url, words):
        refusal = check_url(url)
        assert refusal is not None and refusal.code == "outbound_refused"
        assert words in refusal.message and "OUTBOUND_ALLOWED_HOSTS" in refusal.message

    def test_http_is_refused(self, strict):
        refusal = check_url("http://93.184.216.34/")
        assert refusal.code == "outbound_refused" and "only https" in refusal.message

    def test_public_https_passes(self, strict):
        assert check_url("https://93.184.216.34/v3.0") is None
        assert check_url("https://[2606:4700:4700::1111]/") is None

    def test_allow_list_exact_and_wildcard(self, strict):
        strict.OUTBOUND_ALLOWED_HOSTS = ["clover.internal", "*.corp.example"]
        assert check_url("http://clover.internal:8083/clover") is None
        assert check_url("https://etl.corp.example/") is None
        assert check_url("https://corp.example.evil.test/") is not None

    def test_private_networks_switch(self, settings):
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
        assert check_url("http://127.0.0.1:8765/clever") is None

    def test_unresolvable_host(self, strict):
        refusal = check_url("https://no-such-host.invalid/")
        assert refusal.code == "dns_failed"

    def test_address_problem(self):
        assert address_problem("8.8.8.8") == ""
        assert address_problem("2002:7f00:1::1") == "loopback"  # 6to4 wrapping 127.0.0.1


@pytest.mark.services
@pytest.mark.django_db
class TestClientRefuses:
    def test_refusal_is_a_row_and_nothing_is_sent(self, vendors, strict):
        connection = factories.connection("clever", sandbox=vendors)
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
        assert not result.ok and result.outcome == Outcome.NETWORK_ERROR and result.error_code == "outbound_refused"
        assert result.attempts == 0 and not result.maybe_delivered
        row = RequestLog.objects.get(pk=result.log_ids[0])
        assert row.error_code == "outbound_refused" and "loopback" in row.error_message
        assert vendors.stats("clever")["requests"] == 0

    def test_allow_listed_host_is_sent(self, vendors, strict):
        strict.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
        connection = factories.connection("clever", sandbox=vendors)
        assert send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER).ok
