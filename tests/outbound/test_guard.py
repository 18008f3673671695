"""The outbound guard: https and public addresses only, unless explicitly allowed; the same
check when a URL is saved (form, CLI, import, webhook channels)."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from connections import alerts
from connections.models import AlertChannel, Connection, Credential, Outcome, RequestLog
from connections.outbound import guard
from connections.outbound.client import RequestSpec, send
from connections.outbound.guard import address_problem, check_url
from connections.services.audit import Actor
from tests import factories
from tests.cli import run_cli
from tests.outbound.test_egress_differential import fake_dns

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

    def test_allow_list_exact_and_wildcard(self, strict, monkeypatch):
        strict.OUTBOUND_ALLOWED_HOSTS = ["clover.internal", "*.corp.example"]
        fake_dns(monkeypatch, {"clover.internal": ["10.0.8.3"], "etl.corp.example": ["10.0.9.4"],
                               "corp.example.evil.test": ["10.0.9.5"]})
        assert check_url("http://clover.internal:8083/clover") is None
        assert check_url("https://etl.corp.example/") is None
        assert check_url("https://corp.example.evil.test/") is not None

    def test_private_networks_switch(self, settings):
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
        assert check_url("http://127.0.0.1:8765/clever") is None

    def test_unresolvable_host(self, strict):
        refusal = check_url("https://no-such-host.invalid/")
        assert refusal.code == "dns_failed" and refusal.message == "could not resolve no-such-host.invalid (DNS)"

    def test_address_problem(self):
        assert address_problem("8.8.8.8") == ""
        assert address_problem("2002:7f00:1::1") == "loopback"  # 6to4 wrapping 127.0.0.1


@pytest.mark.services
@pytest.mark.django_db
class TestClientRefuses:
    def test_refusal_is_a_row_and_nothing_is_sent(self, vendors, strict):
        with override_settings(OUTBOUND_ALLOW_PRIVATE_NETWORKS=True):
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


class TestParse:
    """One parser (urllib3's), and whatever parsers disagree on is refused before any lookup."""

    @pytest.mark.parametrize("url, words", [
        ("https://127.0.0.1\\.x.example.net/", "backslash"),
        ("https://127.0.0.1:9443\\@hooks.example.net/x", "backslash"),
        ("https://user@api.example.com/", "user name or password"),
        ("https://a:b@api.example.com/", "user name or password"),
        ("https://api.example.com@127.0.0.1/", "user name or password"),
        ("https://2130706433/", "non-standard way"),
        ("https://0x7f000001/", "non-standard way"),
        ("https://0177.0.0.1/", "non-standard way"),
        ("https://127.1/", "non-standard way"),
        ("https://127.000.000.001/", "non-standard way"),
        ("https://%31%32%37.0.0.1/", "percent-escapes"),
        ("https://[fe80::1%25eth0]/", "zone id"),
        ("ftp://api.example.com/", "only absolute http(s)"),
        ("gopher://api.example.com/", "only absolute http(s)"),
        ("//api.example.com/", "only absolute http(s)"),
        ("https://api.example.com/\r\nX: y", "control characters"),
        ("https://exa mple.com/", "control characters"),
        ("https://under_score-.example.com:0/", "not a valid host name"),
        ("https://api.example.com:0/", "port 0"),
    ])
    def test_refused(self, url, words):
        refusal = guard.parse(url)
        assert isinstance(refusal, guard.Refusal) and words in refusal.message, refusal

    @pytest.mark.parametrize("url, host, port", [
        ("https://api.clever.com/v3.0", "api.clever.com", 443),
        ("HTTPS://API.Clever.com", "api.clever.com", 443),
        ("http://etl.corp.example:8083/clover", "etl.corp.example", 8083),
        ("https://[2606:4700:4700::1111]/", "2606:4700:4700::1111", 443),
        ("https://93.184.216.34:8443/", "93.184.216.34", 8443),
        ("https://ex\u00e4mple.com/", "xn--exmple-cua.com", 443),
        ("https://127.0.0.1.nip.io/", "127.0.0.1.nip.io", 443),
    ])
    def test_accepted_as_the_connection_reads_it(self, url, host, port):
        assert guard.parse(url) == guard.Target(url.split(":", 1)[0].lower(), host, port)

    def test_display_url_shows_scheme_and_host_only(self):
        assert guard.display_url(guard.parse("https://hooks.slack.com/services/T0/B0/XYZsecret")) == \
            "https://hooks.slack.com/…"
        assert guard.display_url(guard.parse("http://[::1]:9443/t")) == "http://[::1]:9443/…"


class TestNeverReachable:
    """Link-local and metadata addresses: refused even with private networks on and the host allowed."""

    @pytest.mark.parametrize("address", ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254",
                                         "100.100.100.200", "::ffff:169.254.169.254", "0.0.0.0", "::",
                                         "64:ff9b::a9fe:a9fe", "224.0.0.1"])
    def test_address(self, address, settings):
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
        settings.OUTBOUND_ALLOWED_HOSTS = ["*.internal", "metadata"]
        refusal = guard.address_refusal(address, "metadata.google.internal")
        assert refusal is not None and "Never reachable" in refusal.message

    def test_allow_listed_name_of_the_metadata_service(self, settings, monkeypatch):
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
        settings.OUTBOUND_ALLOWED_HOSTS = ["metadata.google.internal"]
        fake_dns(monkeypatch, {"metadata.google.internal": ["169.254.169.254"]})
        refusal = check_url("http://metadata.google.internal/computeMetadata/v1/")
        assert refusal is not None and "169.254.169.254" in refusal.message

    def test_private_allowed_still_admits_loopback(self, settings):
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
        assert guard.address_refusal("127.0.0.1", "localhost") is None
        assert guard.address_refusal("10.1.2.3", "etl") is None


STRICT = {"OUTBOUND_ALLOW_PRIVATE_NETWORKS": False, "OUTBOUND_ALLOWED_HOSTS": []}
SAVE_REFUSED = [
    ("http://10.0.0.5", "private network"),
    ("https://192.168.1.20", "private network"),
    ("https://localhost:8443", "loopback"),
    ("https://[::1]", "loopback"),
    ("https://2130706433", "non-standard way"),
    ("https://[::ffff:127.0.0.1]", "loopback"),
    ("https://169.254.169.254", "metadata service"),
    ("https://0.0.0.0", "unspecified"),
    ("http://93.184.216.34", "only https"),
    ("https://127.0.0.1\\.x.example.net", "backslash"),
]


@pytest.mark.services
@pytest.mark.django_db
class TestCheckedWhenSaved:
    @pytest.mark.parametrize("url, words", SAVE_REFUSED)
    def test_form_shows_it_on_the_field_and_stores_nothing(self, admin_client_, url, words):
        with override_settings(**STRICT):
            response = admin_client_.post("/connections/new/", {
                "name": "guarded", "provider": "clever", "base_url": url, "test_interval": "300",
                "refresh_interval": "0", "secret_token": "tok-guard-123"})
        assert response.status_code == 200
        errors = response.context["form"].errors
        assert list(errors) == ["base_url"] and words in errors["base_url"][0]
        assert b"tok-guard-123" not in response.content
        assert not Connection.objects.exists() and not Credential.objects.exists()

    def test_edit_form_refuses_a_private_host(self, admin_client_):
        connection = factories.connection("clever", base_url="https://api.clever.com", secret={"token": "t" * 20})
        with override_settings(**STRICT):
            response = admin_client_.post(f"/connections/{connection.name}/edit/", {
                "base_url": "https://10.1.1.1", "test_interval": "300", "refresh_interval": "0", "enabled": "on"})
        assert response.status_code == 200 and "private network" in response.content.decode()
        connection.refresh_from_db()
        assert connection.base_url == "https://api.clever.com"

    @pytest.mark.parametrize("url, words", SAVE_REFUSED)
    def test_cli_add_exits_2_and_stores_nothing(self, url, words):
        with override_settings(**STRICT):
            r = run_cli("add", "guarded", "--provider", "clever", "--base-url", url, stdin={"token": "t" * 20})
        assert r.code == 2 and "nothing was changed" in r.err and words in r.err, r
        assert not Connection.objects.exists() and not Credential.objects.exists()

    def test_cli_import_exits_2_and_imports_nothing(self, tmp_path):
        path = tmp_path / "export.json"
        path.write_text(json.dumps({"format": 1, "connections": [
            {"name": "fine", "provider": "clever", "base_url": "https://api.clever.com"},
            {"name": "sneaky", "provider": "clever", "base_url": "https://[::ffff:a9fe:a9fe]"},
        ]}))
        with override_settings(**STRICT):
            r = run_cli("import", str(path))
        assert r.code == 2 and "nothing was imported" in r.err and "sneaky" in r.err and "metadata" in r.err
        assert not Connection.objects.exists()

    def test_unresolvable_public_name_may_be_saved(self):
        """Split DNS or a host not yet in DNS: saved; the check runs again before every request."""
        with override_settings(**STRICT):
            connection = factories.connection("clever", base_url="https://api.not-yet.invalid",
                                              secret={"token": "t" * 20})
        assert connection.base_url == "https://api.not-yet.invalid"

    @pytest.mark.parametrize("url, words", [("https://hooks.example.net\\@127.0.0.1/x", "backslash"),
                                            ("http://127.0.0.1:9443/T0/B0/secret", "loopback"),
                                            ("https://169.254.169.254/hook", "metadata")])
    def test_webhook_channel(self, url, words):
        with override_settings(**STRICT), pytest.raises(ValidationError) as caught:
            alerts.channel_create(name="hook", kind="webhook", target=url, actor=Actor(label="admin"))
        assert words in caught.value.message_dict["target"][0] and "secret" not in caught.value.message_dict["target"][0]
        assert not AlertChannel.objects.exists()
