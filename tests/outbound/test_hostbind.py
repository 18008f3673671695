"""Secrets are bound to their host (issue 12 item 5); client addresses behind trusted proxies and
sign-in lockouts per address and per user-and-address (item 7)."""

from __future__ import annotations

import pytest
from django.db import transaction

from connections.models import AuditEvent, CredentialState
from connections.outbound import guard
from connections.outbound.client import send
from connections.providers.http import RequestSpec
from connections.services.audit import Actor
from connections.services.vault import credential_add, secret_replace
from tests import factories
from tests.outbound.test_client import Stub

pytestmark = [pytest.mark.services, pytest.mark.django_db]
USER = Actor(label="hostbind-test")
TOKEN = "hostbind-TOKEN-7fQx2LmZp"


@pytest.fixture
def old_host():
    server = Stub()
    yield server
    server.close()


@pytest.fixture
def new_host():
    server = Stub()
    yield server
    server.close()


def seen(host: Stub) -> list[str]:
    """The Authorization header of every request the host received."""
    return [r["headers"].get("Authorization", "") for r in host.requests]


def edit(client, connection, base_url):
    return client.post(f"/connections/{connection.name}/edit/",
                       {"base_url": base_url, "test_interval": 0, "refresh_interval": 0, "enabled": "on"})


def call(connection, **kwargs):
    connection.refresh_from_db()
    return send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False, **kwargs)


class TestHostChange:
    def test_new_port_retires_the_secret_and_nothing_reaches_the_new_host(self, admin_client_, old_host, new_host):
        connection = factories.connection("clever", base_url=old_host.url, secret={"token": TOKEN})
        assert call(connection).ok and seen(old_host) == [f"Bearer {TOKEN}"]
        response = edit(admin_client_, connection, new_host.url)
        assert response.status_code == 302
        page = admin_client_.get(response["Location"]).content.decode()
        assert "The host changed, so its secret (v1" in page and "Enter the secret again" in page
        assert 'id="host-retired"' in page and "Enter the secret for the new host" in page
        assert not connection.credentials.filter(state=CredentialState.ACTIVE).exists()
        result = call(connection)
        assert not result.ok and result.error_code == "no_credential"
        assert seen(new_host) == []
        event = AuditEvent.objects.get(action="secret.retire_host_changed", connection=connection)
        assert event.details["from"] == guard.origin(old_host.url)
        assert event.details["to"] == guard.origin(new_host.url)
        assert event.details["retired"][0]["version"] == 1 and event.actor_label.startswith("admin")

    def test_old_secret_passed_explicitly_is_refused_for_the_new_host(self, admin_client_, old_host, new_host):
        connection = factories.connection("clever", base_url=old_host.url, secret={"token": TOKEN})
        with transaction.atomic():
            staged = credential_add(connection=connection, secret={"token": TOKEN + "-staged"}, actor=USER)
        edit(admin_client_, connection, new_host.url)
        staged.refresh_from_db()
        assert staged.state == CredentialState.RETIRED  # staged secrets are unbound too
        for credential in connection.credentials.all():
            result = call(connection, credential=credential)
            assert not result.ok and result.error_code == "secret_not_for_this_host"
            assert "enter the secret again" in result.error_message and TOKEN not in result.error_message
        assert seen(new_host) == [] and seen(old_host) == []

    def test_secret_entered_again_is_sent_to_the_new_host(self, admin_client_, old_host, new_host):
        connection = factories.connection("clever", base_url=old_host.url, secret={"token": TOKEN})
        edit(admin_client_, connection, new_host.url)
        connection.refresh_from_db()
        secret_replace(connection=connection, secret={"token": "fresh-TOKEN-for-new-host"}, actor=USER)
        assert call(connection).ok
        assert seen(new_host) == ["Bearer fresh-TOKEN-for-new-host"]
        assert 'id="host-retired"' not in admin_client_.get(f"/connections/{connection.name}/").content.decode()

    def test_scheme_change_retires_too(self, admin_client_):
        connection = factories.connection("clever", base_url="http://api.example.com", secret={"token": TOKEN})
        edit(admin_client_, connection, "https://api.example.com")
        assert not connection.credentials.filter(state=CredentialState.ACTIVE).exists()

    def test_path_only_change_keeps_the_secret(self, admin_client_, old_host):
        connection = factories.connection("clever", base_url=old_host.url, secret={"token": TOKEN})
        response = edit(admin_client_, connection, old_host.url + "/v2/")
        page = admin_client_.get(response["Location"]).content.decode()
        assert "saved." in page and "host changed" not in page
        assert connection.credentials.get(state=CredentialState.ACTIVE).version == 1
        assert not AuditEvent.objects.filter(action="secret.retire_host_changed").exists()

    def test_invalid_new_url_changes_nothing(self, admin_client_, old_host):
        connection = factories.connection("clever", base_url=old_host.url, secret={"token": TOKEN})
        response = edit(admin_client_, connection, "ftp://elsewhere.example.com")
        assert response.status_code == 200 and b"http" in response.content
        connection.refresh_from_db()
        assert connection.base_url == old_host.url
        assert connection.credentials.get(state=CredentialState.ACTIVE).version == 1


class TestTrustedProxies:
    def audit_ip(self, client, settings, count, **meta):
        settings.TRUSTED_PROXY_COUNT = count
        connection = factories.connection("clever", base_url="https://api.example.com", secret={"token": TOKEN})
        client.post(f"/connections/{connection.name}/edit/", {"base_url": "https://api.example.com/v2",
                                                                "test_interval": 0, "refresh_interval": 0}, **meta)
        return AuditEvent.objects.filter(action="connection.update").latest("at").ip

    def test_no_trusted_proxy_ignores_forwarded_for(self, admin_client_, settings):
        ip = self.audit_ip(admin_client_, settings, 0, REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
        assert ip == "10.1.1.1"

    def test_one_proxy_uses_the_address_it_saw_not_what_the_client_wrote(self, admin_client_, settings):
        ip = self.audit_ip(admin_client_, settings, 1, REMOTE_ADDR="10.1.1.1",
                           HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
        assert ip == "203.0.113.9"

    def test_two_proxies(self, admin_client_, settings):
        ip = self.audit_ip(admin_client_, settings, 2, REMOTE_ADDR="10.1.1.2",
                           HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4, 10.1.1.1")
        assert ip == "198.51.100.4"

    def test_garbage_forwarded_for_falls_back_to_the_proxy(self, admin_client_, settings):
        ip = self.audit_ip(admin_client_, settings, 1, REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="not-an-ip")
        assert ip == "10.1.1.1"


def sign_in(client, username, password, address):
    return client.post("/accounts/login/", {"username": username, "password": password},
                       REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=address)


class TestLockoutBehindProxy:
    def test_failures_from_one_client_do_not_lock_the_user_out_for_everyone(self, client, viewer, settings):
        settings.TRUSTED_PROXY_COUNT = 1
        for _ in range(5):
            sign_in(client, viewer.username, "wrong-password", "203.0.113.66")
        assert sign_in(client, viewer.username, factories.PASSWORD, "203.0.113.66").status_code == 429
        # The same user from another client behind the same proxy still signs in.
        response = sign_in(client, viewer.username, factories.PASSWORD, "198.51.100.7")
        assert response.status_code == 302 and client.session.get("_auth_user_id") == str(viewer.pk)

    def test_one_address_trying_many_names_is_locked_out(self, client, viewer, settings):
        settings.TRUSTED_PROXY_COUNT = 1
        for n in range(5):
            sign_in(client, f"guess-{n}", "wrong-password", "203.0.113.77")
        locked = sign_in(client, viewer.username, factories.PASSWORD, "203.0.113.77")
        assert locked.status_code == 429 and b"Too many failed sign-ins" in locked.content
        assert sign_in(client, viewer.username, factories.PASSWORD, "198.51.100.8").status_code == 302
