"""Cleanlist over real HTTP against its sandbox twin (shared/VENDORS.md, "Cleanlist")."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from connections.models import CredentialState, Outcome, RequestLog
from connections.outbound.client import RequestSpec, send
from connections.providers import get_provider
from connections.providers.http import RefreshError
from connections.sandbox import DEMO_CREDENTIALS
from tests import factories
from tests.providers.helpers import USER, WORKER, rows, run_test

pytestmark = [pytest.mark.services, pytest.mark.django_db]
TOKEN = DEMO_CREDENTIALS["cleanlist"]["token"]


def make(vendors, **kwargs):
    return factories.connection("cleanlist", sandbox=vendors, **kwargs)


class TestConnectionTest:
    def test_pub_echo(self, vendors):
        result = run_test(make(vendors))
        assert result.ok and result.data["result"] == {"ping": "pong"}
        assert result.vendor_request_id.startswith("req_")
        (row,) = rows(result)
        assert row.method == "POST" and row.path.endswith("/cleanlist/api/pub_echo/")
        assert "Authorization: [REDACTED]" in row.request_excerpt and TOKEN not in row.request_excerpt

    @pytest.mark.parametrize("suffix", ["", "/", "/api", "/api/"])
    def test_base_url_forms(self, vendors, suffix):
        result = run_test(make(vendors, base_url=vendors.base_url("cleanlist") + suffix))
        assert result.ok and rows(result)[0].path.endswith("/cleanlist/api/pub_echo/")

    def test_pub_echo_does_not_prove_the_token(self, vendors):
        connection = make(vendors, secret={"token": "f" * 40})
        assert run_test(connection).ok
        assert "does not check the token" in connection.provider_obj.describe_test(connection.effective_options())

    def test_authorised_service_proves_the_token(self, vendors):
        options = {"test_service": "email_verify", "test_body": '{"email": "ops@example.com"}'}
        good = make(vendors, options=options)
        assert run_test(good).ok
        bad = make(vendors, options=options, secret={"token": "f" * 40})
        result = run_test(bad, actor=WORKER)
        assert result.status_code == 401 and result.error_code == "invalid_token" and result.auth_failed
        assert result.attempts == 1

    def test_refresh_is_never_a_test(self):
        with pytest.raises(ValidationError):
            get_provider("cleanlist").clean_options({"test_service": "_refresh"})


class TestErrors:
    def test_service_not_permitted_403(self, vendors):
        result = send(make(vendors), RequestSpec("POST", "/phone_verify/", json={"phone": "+15550100"}), actor=USER)
        assert result.status_code == 403 and result.error_code == "service_not_permitted"
        assert result.error_details["error_msg"] == result.error_message and result.vendor_request_id
        assert not result.auth_failed

    def test_unknown_service_404_json(self, vendors):
        result = send(make(vendors), RequestSpec("POST", "nothing_here", json={}), actor=USER)
        assert result.status_code == 404 and result.error_code == "unknown_service"

    def test_400_invalid_input(self, vendors):
        result = send(make(vendors), RequestSpec("POST", "/api/email_verify/", json={}), actor=USER)
        assert result.status_code == 400 and result.error_message == "Field 'email' is required."

    def test_malformed_json(self, vendors):
        vendors.set_fault("cleanlist", "malformed_json", count=1)
        result = run_test(make(vendors))
        assert result.error_code == "malformed_json" and result.outcome == Outcome.HTTP_ERROR


class TestRefresh:
    def test_refresh_rescinds_the_old_token_and_never_logs_the_new_one(self, vendors):
        connection = make(vendors)
        credential = connection.credentials.get(state=CredentialState.ACTIVE)
        provider = connection.provider_obj
        secret = credential.secret.reveal()
        assert provider.can_refresh(secret)
        result = send(connection, provider.refresh_request(secret), actor=USER, operation="refresh",
                      credential=credential, retry=False)
        assert result.ok and result.attempts == 1
        new = provider.parse_refresh(secret, result.data)
        assert new["token"] != TOKEN
        for row in RequestLog.objects.filter(connection=connection):
            assert new["token"] not in row.response_excerpt + row.request_excerpt
            assert TOKEN not in row.response_excerpt + row.request_excerpt
        again = send(connection, provider.refresh_request(secret), actor=USER, operation="refresh",
                     credential=credential, retry=False)
        assert again.status_code == 401 and again.attempts == 1

    def test_refresh_without_new_token_is_an_error(self):
        with pytest.raises(RefreshError):
            get_provider("cleanlist").parse_refresh({"token": "x"}, {"ok": True, "result": {}})

    def test_5xx_on_refresh_is_not_retried(self, vendors, sleeps):
        connection = make(vendors)
        vendors.set_fault("cleanlist", "http500_empty", count=1)
        secret = {"token": TOKEN}
        result = send(connection, get_provider("cleanlist").refresh_request(secret), actor=WORKER,
                      operation="refresh")
        # A POST that may have been processed is not repeated, even with retry on.
        assert result.status_code == 500 and result.attempts == 1 and sleeps == []

    def test_drop_after_refresh_is_maybe_delivered(self, vendors):
        connection = make(vendors)
        vendors.set_fault("cleanlist", "drop_after_refresh", count=1)
        result = send(connection, get_provider("cleanlist").refresh_request({"token": TOKEN}), actor=USER,
                      operation="refresh", retry=False)
        assert result.status_code is None and result.maybe_delivered
        assert result.outcome == Outcome.NETWORK_ERROR and result.error_code == "connection_reset"
