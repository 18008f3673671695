"""CloverDX Server over real HTTP against its sandbox twin (shared/VENDORS.md, "CloverDX")."""

from __future__ import annotations

import pytest

from connections.models import Outcome
from connections.outbound.client import RequestSpec, send
from connections.sandbox import CLOVERDX_NO_MONITORING_CREDENTIALS, DEMO_CREDENTIALS
from tests import factories
from tests.providers.helpers import USER, WORKER, rows, run_test

pytestmark = [pytest.mark.services, pytest.mark.django_db]
DEMO = DEMO_CREDENTIALS["cloverdx"]


def make(vendors, **kwargs):
    return factories.connection("cloverdx", sandbox=vendors, **kwargs)


class TestConnectionTest:
    def test_accessibility_then_authenticated_get(self, vendors):
        result = run_test(make(vendors, options={"requested_by": "ops-dashboard"}))
        assert result.ok and result.status_code == 200
        first, second = (r for r in rows_of_connection(result))
        assert first.path.endswith("/clover/accessibilityTest.jsp") and "Authorization" not in first.request_excerpt
        assert second.path.endswith("/clover/api/rest/v1/executions?pageSize=1")
        assert "X-Requested-By: ops-dashboard" in second.request_excerpt
        assert "Authorization: [REDACTED]" in second.request_excerpt

    @pytest.mark.parametrize("suffix", ["", "/", "/clover", "/clover/", "/clover/api/rest/v1", "/clover/api/rest/v1/"])
    def test_base_url_forms(self, vendors, suffix):
        result = run_test(make(vendors, base_url=vendors.base_url("cloverdx") + suffix))
        assert result.ok, result.error_message

    def test_suspended_is_its_own_state(self, vendors, sleeps):
        vendors.set_fault("cloverdx", "suspended")
        result = run_test(make(vendors), actor=WORKER)
        assert result.error_code == "suspended" and result.status_code == 503 and sleeps == []
        assert "suspended" in result.error_message
        assert vendors.stats("cloverdx")["requests"] == 1  # no credential was sent to a suspended server

    def test_a_failed_accessibility_check_still_leads_to_the_authenticated_get(self, vendors, sleeps):
        # Only suspended or unreachable ends the test early; a proxy's 502 on the JSP (every try)
        # says nothing about the REST API, so its authenticated GET decides.
        vendors.set_fault("cloverdx", "html502", count=5)
        result = run_test(make(vendors), actor=WORKER)
        assert result.ok and result.status_code == 200
        paths = [row.path for row in rows_of_connection(result)]
        assert [p.endswith("/clover/accessibilityTest.jsp") for p in paths] == [True] * 5 + [False]
        assert paths[-1].endswith("/clover/api/rest/v1/executions?pageSize=1")

    def test_unreachable_ends_the_test_before_the_credential_is_sent(self, vendors, sleeps):
        vendors.set_fault("cloverdx", "reset", count=5)
        result = run_test(make(vendors), actor=WORKER)
        assert not result.ok and result.outcome == Outcome.NETWORK_ERROR
        paths = [row.path for row in rows_of_connection(result)]
        assert paths and all(p.endswith("/clover/accessibilityTest.jsp") for p in paths)

    def test_wrong_password_401_never_retried(self, vendors, sleeps):
        result = run_test(make(vendors, secret={"username": DEMO["username"], "password": "nope-nope-nope"}),
                          actor=WORKER)
        assert result.status_code == 401 and result.auth_failed and sleeps == []
        assert vendors.stats("cloverdx")["failed_logins"] == {DEMO["username"]: 1}

    def test_option_test_path(self, vendors):
        connection = make(vendors, options={"test_path": "/clover/api/rest/v1/monitors"})
        assert run_test(connection).ok


class TestErrors:
    def test_403_without_the_monitoring_permission(self, vendors):
        connection = make(vendors, secret=dict(CLOVERDX_NO_MONITORING_CREDENTIALS))
        result = send(connection, RequestSpec("GET", "/monitors"), actor=USER)
        assert result.status_code == 403 and result.error_code == "forbidden"
        assert "Monitoring permission" in result.error_message
        assert rows(result)[0].path.endswith("/clover/api/rest/v1/monitors")

    def test_html_404_from_tomcat(self, vendors):
        result = send(make(vendors), RequestSpec("GET", "/clover/nothing.jsp"), actor=USER)
        assert result.status_code == 404 and result.error_message.startswith("HTML page: HTTP Status 404")

    def test_proxy_html_502_then_recovers(self, vendors, sleeps):
        vendors.set_fault("cloverdx", "html502", count=2)
        result = send(make(vendors), RequestSpec("GET", "/executions", params={"pageSize": 1}), actor=WORKER)
        assert result.ok and result.attempts == 3 and len(sleeps) == 2
        assert all(0.5 <= s <= 2 for s in sleeps)  # backoff with jitter: 1 s then 2 s, each 50-100%

    def test_reset_connection_is_a_network_error(self, vendors, sleeps):
        vendors.set_fault("cloverdx", "reset")
        result = send(make(vendors), RequestSpec("GET", "/executions"), actor=USER, retry=False)
        assert result.outcome == Outcome.NETWORK_ERROR and result.error_code == "connection_reset"
        assert result.maybe_delivered and result.status_code is None


def rows_of_connection(result):
    from connections.models import RequestLog

    log = RequestLog.objects.filter(pk__in=result.log_ids).first()
    return list(RequestLog.objects.filter(connection_id=log.connection_id).order_by("id"))
