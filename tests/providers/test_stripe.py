"""Stripe (a declarative vendor, vendors/stripe.yaml) over real HTTP against its sandbox twin."""

from __future__ import annotations

import pytest

from connections.models import Outcome
from connections.outbound.client import RequestSpec, send
from connections.providers import get_provider
from tests import factories
from tests.providers.helpers import WORKER, rows, run_test

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def make(vendors, **kwargs):
    return factories.connection("stripe", sandbox=vendors, **kwargs)


class TestConnectionTest:
    def test_balance_with_the_secret_key(self, vendors):
        result = run_test(make(vendors))
        assert result.ok and result.data["object"] == "balance"
        assert result.vendor_request_id.startswith("req_")  # the Request-Id header
        (row,) = rows(result)
        assert row.path.endswith("/stripe/v1/balance") and "Authorization: [REDACTED]" in row.request_excerpt

    def test_invalid_key_401_parsed_and_never_retried(self, vendors, sleeps):
        result = run_test(make(vendors, secret={"token": "sk_test_" + "x" * 40}), actor=WORKER)
        assert result.status_code == 401 and result.auth_failed and result.attempts == 1 and sleeps == []
        # {"error": {"type", "message"}}: no code, so the type stands in (code: [/error/code, /error/type]).
        assert result.error_code == "invalid_request_error"
        assert result.error_message.startswith("Invalid API Key provided: sk_test_")
        assert result.error_details["type"] == "invalid_request_error"
        assert result.vendor_request_id.startswith("req_")


class TestRetries:
    def test_lock_timeout_429_backs_off_and_retries(self, vendors, sleeps):
        vendors.set_fault("stripe", "lock_timeout", count=1)
        result = run_test(make(vendors), actor=WORKER)
        assert result.ok and result.attempts == 2 and len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5
        first = rows(result)[0]
        assert first.status_code == 429 and first.outcome == Outcome.THROTTLED and first.error_code == "lock_timeout"

    def test_rate_limit_429_retries_with_exponential_backoff(self, vendors, sleeps, tune):
        tune("stripe", limit_per_second=1)
        connection = make(vendors)
        assert send(connection, RequestSpec("GET", "/v1/balance"), actor=WORKER).ok
        result = send(connection, RequestSpec("GET", "/v1/balance"), actor=WORKER)
        codes = [row.error_code for row in rows(result)]
        assert codes[0] == "rate_limit"
        # Backoff doubles from 0.5 s with jitter (half to all of each step), at most 4 tries in all.
        for n, wait in enumerate(sleeps):
            assert 0.5 * 2 ** n / 2 <= wait <= 0.5 * 2 ** n
        assert result.attempts <= 4

    def test_should_retry_false_stops_a_retryable_500(self, vendors, sleeps):
        vendors.set_fault("stripe", "api_error_no_retry")
        result = run_test(make(vendors), actor=WORKER)
        assert result.status_code == 500 and result.attempts == 1 and sleeps == []
        assert result.error_code == "api_error" and result.error_details["should_retry"] == "false"

    def test_500_without_the_header_is_retried(self, vendors, sleeps):
        vendors.set_fault("stripe", "http500_empty")
        result = run_test(make(vendors), actor=WORKER)
        assert result.status_code == 500 and result.attempts == 4 and len(sleeps) == 3


class TestStagedRotation:
    def test_a_new_key_is_verified_with_the_balance_test_then_promoted(self, vendors):
        from connections.models import CredentialState, RotationState
        from connections.rotation import staged_replace
        from connections.services.vault import active_credential

        connection = make(vendors)
        old = active_credential(connection)
        wrong = staged_replace(connection=connection, secret={"token": "sk_test_" + "z" * 40}, actor=WORKER)
        assert wrong.state == RotationState.FAILED and active_credential(connection).pk == old.pk
        vendors.vendor("stripe").add_credentials({"token": "sk_test_rolled_51QdAbCdEfGh"})
        rolled = staged_replace(connection=connection, secret={"token": "sk_test_rolled_51QdAbCdEfGh"}, actor=WORKER)
        assert rolled.state == RotationState.SUCCEEDED, rolled.message
        old.refresh_from_db()
        assert old.state == CredentialState.RETIRED and active_credential(connection).pk != old.pk


def test_throttle_is_25_per_second_per_key():
    plan = get_provider("stripe").throttle_plan(connection_id=1, fingerprint="fp1")
    assert plan.block_scope == "stripe:token:fp1"
    assert [(r.kind, r.limit, r.period) for r in plan.rules] == [("pace", 25, 1.0)]
