"""Clever over real HTTP against its sandbox twin (shared/VENDORS.md, "Clever")."""

from __future__ import annotations

import time

import pytest

from connections.models import Outcome
from connections.outbound.client import RequestSpec, send
from connections.providers import get_provider
from connections.sandbox import CLEVER_SSO_TOKEN
from tests import factories
from tests.conftest import clear_cache
from tests.providers.helpers import USER, WORKER, rows, run_test

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def make(vendors, **kwargs):
    return factories.connection("clever", sandbox=vendors, **kwargs)


def _away_from_minute_edge():
    """Clever's window turns every minute: keep a test's few requests inside one window."""
    left = 60 - time.time() % 60
    if left < 8:
        time.sleep(left + 0.2)


class TestConnectionTest:
    def test_district_token(self, vendors):
        result = run_test(make(vendors))
        assert result.ok and result.status_code == 200
        assert result.data["data"][0]["data"]["name"] == "Switchboard Demo District"
        (row,) = rows(result)
        assert row.path.endswith("/clever/v3.0/districts")
        assert "Authorization: [REDACTED]" in row.request_excerpt

    @pytest.mark.parametrize("suffix", ["", "/v3.0", "/v3.0/"])
    def test_base_url_with_or_without_version(self, vendors, suffix):
        connection = make(vendors, base_url=vendors.base_url("clever") + suffix)
        result = run_test(connection)
        assert result.ok and rows(result)[0].path.endswith("/clever/v3.0/districts")

    def test_sso_token_with_me_option(self, vendors):
        connection = make(vendors, secret={"token": CLEVER_SSO_TOKEN}, options={"test_path": "/v3.0/me"})
        assert run_test(connection).ok
        assert "/me" in connection.provider_obj.describe_test(connection.effective_options())

    def test_sso_token_on_districts_is_404_not_retried(self, vendors, sleeps):
        result = run_test(make(vendors, secret={"token": CLEVER_SSO_TOKEN}), actor=WORKER)
        assert result.status_code == 404 and result.attempts == 1 and sleeps == []
        assert "instant-login" in result.error_message

    def test_invalid_token_401_never_retried(self, vendors, sleeps):
        result = run_test(make(vendors, secret={"token": "0" * 40}), actor=WORKER)
        assert result.status_code == 401 and result.auth_failed and result.attempts == 1 and sleeps == []
        assert result.error_message == "Invalid or missing bearer token."


class TestErrors:
    def test_unknown_endpoint_answers_html(self, vendors):
        result = send(make(vendors), RequestSpec("GET", "/v3.0/nothing"), actor=USER)
        assert result.status_code == 404 and result.error_message == "HTML page: 404 Not Found"
        assert rows(result)[0].response_content_type.startswith("text/html")

    def test_413_limit_over_10000_not_retried(self, vendors, sleeps):
        result = send(make(vendors), RequestSpec("GET", "/v3.0/users", params={"limit": 20000}), actor=WORKER)
        assert result.status_code == 413 and result.attempts == 1 and sleeps == []

    def test_500_502_503_backoff_1_2_4_8_16_five_retries(self, vendors, sleeps):
        vendors.set_fault("clever", "http500_empty")
        result = run_test(make(vendors), actor=WORKER)
        assert result.status_code == 500 and result.attempts == 6
        assert sleeps == [1, 2, 4, 8, 16]

    def test_interactive_callers_stop_when_the_next_wait_is_too_long(self, vendors, sleeps):
        vendors.set_fault("clever", "html502")
        result = run_test(make(vendors), actor=USER)
        assert result.status_code == 502 and sleeps == [1, 2, 4]
        assert "stopped instead" in result.error_details["retry_stopped"]

    def test_malformed_json(self, vendors):
        vendors.set_fault("clever", "malformed_json", count=1)
        result = run_test(make(vendors))
        assert not result.ok and result.error_code == "malformed_json"
        assert "not valid JSON" in result.error_message


class TestRateLimit:
    def test_headers_fill_the_snapshot(self, vendors):
        connection = make(vendors)
        result = run_test(connection)
        assert result.rate_limit["limit"] == 1200 and result.rate_limit["remaining"] == 1199
        assert result.rate_limit["bucket"].startswith("bkt_")
        connection.refresh_from_db()
        assert connection.rl_limit == 1200 and connection.rl_remaining == 1199
        assert connection.rl_reset_at is not None and connection.rl_bucket.startswith("bkt_")

    def test_remaining_zero_blocks_the_token_until_reset(self, vendors, sleeps, tune):
        _away_from_minute_edge()
        tune("clever", limit_per_minute=2)
        connection = make(vendors)
        first, second, third = (send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
                                for _ in range(3))
        assert first.ok and second.ok and second.rate_limit["remaining"] == 0
        # Remaining: 0 blocks the token until X-RateLimit-Reset: the third is not sent at all.
        assert third.outcome == Outcome.THROTTLED and third.status_code is None and third.attempts == 0
        assert third.blocked_until is not None and vendors.stats("clever")["requests"] == 2
        connection.refresh_from_db()
        assert connection.rl_remaining == 0 and connection.blocked_until is not None

    def test_429_empty_body_waits_for_reset_or_records_the_block(self, vendors, sleeps, tune):
        _away_from_minute_edge()
        tune("clever", limit_per_minute=1)
        connection = make(vendors)
        assert send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER).ok
        clear_cache()  # as if another deployment had spent the budget unseen
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
        # VENDORS.md: 429 has an empty body and no Retry-After; the reset is > 5 s away, so the
        # interactive caller stops instead of sleeping, and the token is blocked until then.
        assert result.status_code == 429 and result.outcome == Outcome.THROTTLED and sleeps == []
        assert result.rate_limit["remaining"] == 0 and result.rate_limit["reset"] > time.time()
        assert result.blocked_until is not None and "retry_stopped" in result.error_details
        (row,) = rows(result)
        assert row.rate_limit["limit"] == 1 and row.response_excerpt.startswith("HTTP 429")

    def test_429_with_empty_body_sets_block_until_reset(self, vendors, sleeps):
        vendors.set_fault("clever", "429_no_headers", count=1)
        result = run_test(make(vendors), actor=WORKER)
        # No headers at all: backoff and try again.
        assert result.ok and result.attempts == 2 and sleeps == [1]
        first = rows(result)[0]
        assert first.status_code == 429 and first.outcome == Outcome.THROTTLED
        assert first.error_message == "HTTP 429 with an empty body"

    def test_the_local_window_stops_before_the_vendor_would(self, vendors, settings):
        settings.CLEVER_RATE_LIMIT_PER_MINUTE = 5  # 99% of it: 4 per window
        connection = make(vendors)
        results = [send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER, max_wait=0.5)
                   for _ in range(5)]
        assert [r.ok for r in results[:4]] == [True] * 4 or vendors.stats("clever")["requests"] <= 5
        assert results[-1].outcome == Outcome.THROTTLED and results[-1].status_code is None
        assert "window" in rows(results[-1])[0].error_details["reason"]

    def test_scope_is_the_token_fingerprint(self):
        provider = get_provider("clever")
        plan = provider.throttle_plan(connection_id=1, fingerprint="abc123")
        assert plan.block_scope == "clever:token:abc123"
        assert plan.rules[0].kind == "window" and plan.rules[0].period == 60


def test_retry_policy_never_retries_documented_statuses():
    from connections.providers.http import Attempt, ErrorInfo, RateLimitInfo

    provider = get_provider("clever")
    for status in (400, 401, 404, 413, 501):
        attempt = Attempt(1, status, "http_error", ErrorInfo(), RateLimitInfo(), False, True)
        assert provider.retry_delay(attempt, 0) is None
    reset = Attempt(1, 429, "throttled", ErrorInfo(), RateLimitInfo(reset_at=1010.0), False, True)
    assert provider.retry_delay(reset, 1000.0) == 11.0  # until X-RateLimit-Reset, plus 1 s for skew
