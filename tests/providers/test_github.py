"""GitHub (a declarative vendor, vendors/github.yaml) over real HTTP against its sandbox twin."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from connections.models import Outcome
from connections.outbound.client import RequestSpec, send
from connections.providers import get_provider
from tests import factories
from tests.conftest import clear_cache
from tests.providers.helpers import USER, WORKER, rows, run_test

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def make(vendors, **kwargs):
    return factories.connection("github", sandbox=vendors, **kwargs)


class TestConnectionTest:
    def test_both_test_requests_with_bearer_and_the_documented_headers(self, vendors):
        result = run_test(make(vendors))
        assert result.ok and result.status_code == 200
        assert result.data["resources"]["core"]["limit"] == 5000  # the second request: GET /rate_limit
        (last,) = rows(result)
        assert last.path.endswith("/github/rate_limit") and vendors.stats("github")["requests"] == 2
        log = list(type(last).objects.filter(connection=last.connection).order_by("id"))
        assert [row.path.rsplit("/", 1)[-1] for row in log] == ["user", "rate_limit"]
        assert "Authorization: [REDACTED]" in log[0].request_excerpt
        assert "X-GitHub-Api-Version: 2022-11-28" in log[0].request_excerpt
        assert "application/vnd.github+json" in log[0].request_excerpt
        assert log[0].vendor_request_id.count(":") == 4  # X-GitHub-Request-Id

    def test_what_each_request_proves_is_said(self, vendors):
        text = make(vendors).provider_obj.describe_test({})
        assert "GET /user: the token is valid" in text and "GET /rate_limit" in text

    def test_bad_credentials_401_parsed_and_never_retried(self, vendors, sleeps):
        result = run_test(make(vendors, secret={"token": "ghp_" + "0" * 36}), actor=WORKER)
        assert result.status_code == 401 and result.auth_failed and result.attempts == 1 and sleeps == []
        assert result.error_message == "Bad credentials"
        assert result.error_details["documentation_url"] == "https://docs.github.com/rest"
        assert result.vendor_request_id.count(":") == 4
        assert vendors.stats("github")["requests"] == 1  # the second test request is not sent


class TestRateLimits:
    def test_headers_reach_the_headroom_snapshot(self, vendors):
        connection = make(vendors)
        result = send(connection, RequestSpec("GET", "/user"), actor=USER)
        assert result.rate_limit["limit"] == 5000 and result.rate_limit["remaining"] == 4999
        connection.refresh_from_db()
        assert connection.rl_limit == 5000 and connection.rl_remaining == 4999 and connection.rl_bucket == "core"

    def test_remaining_zero_blocks_the_token_until_reset(self, vendors, sleeps, tune):
        tune("github", limit_per_hour=1)
        connection = make(vendors)
        assert send(connection, RequestSpec("GET", "/user"), actor=USER).ok
        blocked = send(connection, RequestSpec("GET", "/user"), actor=USER)
        assert blocked.outcome == Outcome.THROTTLED and blocked.status_code is None
        assert vendors.stats("github")["requests"] == 1

    def test_403_with_remaining_zero_is_a_rate_limit_not_a_permission_error(self, vendors, sleeps, tune):
        tune("github", limit_per_hour=1)
        connection = make(vendors)
        assert send(connection, RequestSpec("GET", "/user"), actor=USER).ok
        clear_cache()  # as if another deployment had spent the budget unseen
        result = send(connection, RequestSpec("GET", "/user"), actor=USER)
        assert result.status_code == 403 and result.error_code == "rate_limited"
        assert result.error_message.startswith("API rate limit exceeded")
        # The reset is up to an hour away: the interactive caller stops and the token is blocked.
        assert sleeps == [] and result.blocked_until is not None and "retry_stopped" in result.error_details
        assert not result.auth_failed

    def test_secondary_limit_403_retry_after_is_waited_then_retried(self, vendors, sleeps):
        vendors.set_fault("github", "secondary_rate_limit", count=1, seconds=1)
        result = send(make(vendors), RequestSpec("GET", "/user"), actor=WORKER)
        assert result.ok and result.attempts == 2 and sleeps == [1.0]
        first = rows(result)[0]
        assert first.status_code == 403 and first.error_code == "rate_limited"
        assert "secondary rate limit" in first.error_message

    def test_403_permission_error_is_not_retried(self, vendors, sleeps):
        result = send(make(vendors), RequestSpec("GET", "/orgs/acme/audit-log"), actor=WORKER)
        assert result.status_code == 403 and result.attempts == 1 and sleeps == []
        assert result.error_code == "forbidden" and not result.auth_failed
        assert result.error_message == "Resource not accessible by personal access token"

    def test_scope_is_the_token_with_the_hourly_window_and_concurrency(self):
        plan = get_provider("github").throttle_plan(connection_id=1, fingerprint="abc123")
        assert plan.block_scope == "github:token:abc123"
        assert {(r.kind, r.limit, r.period) for r in plan.rules} == {("concurrency", 100, 1.0),
                                                                     ("window", 5000, 3600.0)}


class TestAllowedHosts:
    def test_a_base_url_off_the_allowed_hosts_is_refused(self, db):
        with pytest.raises(ValidationError) as exc:
            factories.connection("github", base_url="https://api.github.com.evil.example", secret={"token": "x"})
        assert "api.github.com" in " ".join(exc.value.message_dict["base_url"])

    def test_loopback_only_while_private_networks_are_allowed(self, vendors, settings):
        connection = make(vendors)
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
        result = send(connection, RequestSpec("GET", "/user"), actor=USER)
        assert not result.ok and result.status_code is None and result.error_code == "bad_path"
        assert "not one of the hosts" in result.error_message
        assert vendors.stats("github")["requests"] == 0
