"""TeleTracker over real HTTP against its sandbox twin (shared/VENDORS.md, "TeleTracker")."""

from __future__ import annotations

import time

import pytest

from connections.models import Credential, CredentialState, RequestLog
from connections.outbound.client import RequestSpec, send
from connections.providers import get_provider
from connections.providers.http import Reply
from connections.sandbox import DEMO_CREDENTIALS, TELETRACKER_DEMO_ACCOUNTS
from tests import factories
from tests.providers.helpers import USER, WORKER, rows, run_test

pytestmark = [pytest.mark.services, pytest.mark.django_db]
DEMO = DEMO_CREDENTIALS["teletracker"]
CALL_DATA = RequestSpec("GET", "/reports/call-data", params={"start": "2025-11-20"})


def make(vendors, **secret_changes):
    return factories.connection("teletracker", sandbox=vendors, secret={**DEMO, **secret_changes})


def active(connection) -> Credential:
    return connection.credentials.get(state=CredentialState.ACTIVE)


class TestConnectionTest:
    def test_login_auth_only_with_account_id(self, vendors):
        result = run_test(make(vendors))
        assert result.ok and result.status_code == 200 and result.vendor_request_id
        (row,) = rows(result)
        assert row.method == "POST" and row.path.endswith("/auth/login")
        assert "auth_only=1" in row.request_excerpt and "[REDACTED]" in row.request_excerpt
        assert vendors.stats("teletracker")["live_sessions"] == 0  # auth_only creates no session

    def test_account_the_user_cannot_use_is_403(self, vendors):
        result = run_test(make(vendors, account_id="99999"))
        assert result.status_code == 403 and result.error_message.startswith("No access to account")
        # The account id is an identifier, not a secret: shown, never blanked (issue 12 item 9).
        assert "99999" in result.error_message and "[REDACTED]" not in result.error_message

    def test_wrong_password_401_never_retried(self, vendors, sleeps):
        result = run_test(make(vendors, password="wrong-wrong-wrong"), actor=WORKER)
        assert result.status_code == 401 and result.auth_failed and result.attempts == 1 and sleeps == []


class TestSchemes:
    def test_basic_always_sends_account_id(self, vendors):
        result = send(make(vendors), CALL_DATA, actor=USER)
        assert result.ok
        # Without account_id the user's first account would answer (VENDORS.md).
        assert result.data["data"]["account_id"] == DEMO["account_id"] != TELETRACKER_DEMO_ACCOUNTS[0]

    def test_integrator_header(self, vendors):
        result = send(make(vendors, auth_scheme="integrator"), CALL_DATA, actor=USER)
        assert result.ok and result.data["data"]["account_id"] == DEMO["account_id"]

    def test_account_id_option_overrides_the_credential(self, vendors):
        connection = factories.connection("teletracker", sandbox=vendors, options={"account_id": "10482"})
        result = send(connection, CALL_DATA, actor=USER)
        assert result.data["data"]["account_id"] == "10482"

    def test_bearer_session_logs_in_once_and_stores_the_session_encrypted(self, vendors, tune):
        tune("teletracker", token_lifetime=900)
        connection = make(vendors, auth_scheme="bearer_session")
        before = time.time()
        first = send(connection, CALL_DATA, actor=USER)
        second = send(connection, CALL_DATA, actor=USER)
        assert first.ok and second.ok
        logins = RequestLog.objects.filter(connection=connection, operation="login")
        assert logins.count() == 1
        credential = active(connection)
        session = credential.secret.reveal()["session"]
        assert session["token"].startswith("tts_") and session["refresh_token"].startswith("ttr_")
        # Expiry from tokenLifetime (900 s here), not the vendor's tokenExpiration clock.
        assert before + 900 - 5 <= session["expires_at"] <= time.time() + 900
        assert "session_expires_at" in credential.meta
        assert session["token"] not in str(Credential.objects.filter(pk=credential.pk).values_list("secret"))
        for row in RequestLog.objects.filter(connection=connection):
            text = row.request_excerpt + row.response_excerpt + row.error_message
            assert session["token"] not in text and session["refresh_token"] not in text

    def test_expired_session_logs_in_again(self, vendors, tune):
        tune("teletracker", token_lifetime=30)  # within the 60 s margin: always "expiring"
        connection = make(vendors, auth_scheme="bearer_session")
        assert send(connection, CALL_DATA, actor=USER).ok
        assert send(connection, CALL_DATA, actor=USER).ok
        assert RequestLog.objects.filter(connection=connection, operation="login").count() == 2

    def test_rejected_session_is_forgotten(self, vendors):
        connection = make(vendors, auth_scheme="bearer_session")
        assert send(connection, CALL_DATA, actor=USER).ok
        vendors.reset()  # the vendor forgets every session
        rejected = send(connection, CALL_DATA, actor=USER)
        assert rejected.status_code == 401 and rejected.attempts == 1
        assert "session" not in active(connection).secret.reveal()
        assert send(connection, CALL_DATA, actor=USER).ok  # logs in afresh


class TestRefresh:
    def test_refresh_returns_new_token_and_refresh_token_old_one_dies(self, vendors):
        connection = make(vendors, auth_scheme="bearer_session")
        assert send(connection, CALL_DATA, actor=USER).ok
        credential = active(connection)
        secret = credential.secret.reveal()
        provider = connection.provider_obj
        assert provider.can_refresh(secret)
        spec = provider.refresh_request(secret)
        result = send(connection, spec, actor=USER, operation="refresh", credential=credential, retry=False)
        assert result.ok
        new = provider.parse_refresh(secret, result.data, now=time.time())
        assert new["session"]["token"] != secret["session"]["token"]
        assert new["session"]["refresh_token"] != secret["session"]["refresh_token"]
        # The refresh answer's new tokens never reach the log.
        (row,) = rows(result)
        assert new["session"]["token"] not in row.response_excerpt
        assert new["session"]["refresh_token"] not in row.response_excerpt
        again = send(connection, spec, actor=USER, operation="refresh", credential=credential, retry=False)
        assert again.status_code == 401
        assert vendors.stats("teletracker")["rescinded_token_uses"] == 1

    def test_drop_after_refresh_is_maybe_delivered(self, vendors):
        connection = make(vendors, auth_scheme="bearer_session")
        assert send(connection, CALL_DATA, actor=USER).ok
        credential = active(connection)
        vendors.set_fault("teletracker", "drop_after_refresh", count=1)
        spec = connection.provider_obj.refresh_request(credential.secret.reveal())
        result = send(connection, spec, actor=USER, operation="refresh", credential=credential, retry=False)
        assert result.status_code is None and result.maybe_delivered and result.attempts == 1


class TestErrors:
    def test_400_missing_input_vars_and_guid(self, vendors):
        result = send(make(vendors), RequestSpec("GET", "/reports/call-data"), actor=USER)
        assert result.status_code == 400
        assert result.error_details["missingInputVars"] == ["start"]
        assert result.error_details["errorDetail"]
        assert result.vendor_request_id and result.error_details["support_until"]
        assert "start" in result.error_message

    def test_422_bad_date(self, vendors):
        result = send(make(vendors), RequestSpec("GET", "/reports/call-data", params={"start": "yesterday"}),
                      actor=USER)
        assert result.status_code == 422 and result.error_code == "unprocessable"

    def test_5xx_with_no_body_recorded_and_retried(self, vendors, sleeps):
        vendors.set_fault("teletracker", "http500_empty", count=2)
        result = send(make(vendors), CALL_DATA, actor=WORKER)
        assert result.ok and result.attempts == 3
        first = rows(result)[0]
        assert first.status_code == 500 and first.error_message == "HTTP 500 with an empty body"
        assert first.response_excerpt.startswith("HTTP 500")

    def test_success_false_with_200_is_a_failure(self):
        provider = get_provider("teletracker")
        reply = Reply(200, {}, "application/json", b"{}", "{}", data={"success": False, "guid": "g-1"})
        assert not provider.is_success(reply)
        assert provider.parse_error(reply).request_id == "g-1"
