"""Operations pages in Chromium: overview, request log filters, error details, error history,
and a Test against the sandbox whose failure shows up everywhere."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from connections.models import Connection, RequestLog
from tests import factories

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def _seed():
    clever = Connection.objects.create(name="clever-district", provider="clever", base_url="https://api.clever.com",
                                       health="ok", last_test_at=timezone.now() - timedelta(minutes=4),
                                       rl_limit=1200, rl_remaining=310, rl_reset_at=timezone.now() + timedelta(seconds=40),
                                       rl_observed_at=timezone.now())
    tele = Connection.objects.create(name="teletracker-calls", provider="teletracker",
                                     base_url="https://api.teletracker.net", health="failing",
                                     health_reason="HTTP 400 on the last test")
    bridge = Connection.objects.create(name="cleverbridge-shop", provider="cleverbridge",
                                       base_url="https://rest.cleverbridge.com", health="ok")
    now = timezone.now()
    rows = []
    for i in range(80):
        c = (clever, tele, bridge)[i % 3]
        error = i % 7 == 0
        rows.append(RequestLog(connection=c, provider=c.provider, operation="call", method="GET",
                               path=f"/v3.0/items/{i}", started_at=now - timedelta(minutes=17 * i),
                               duration_ms=40 + i, status_code=503 if error else 200,
                               outcome="http_error" if error else "ok"))
    chain = uuid.uuid4()
    rows.append(RequestLog(connection=tele, provider="teletracker", operation="call", method="POST",
                           path="/reports/call-data", chain_id=chain, started_at=now - timedelta(minutes=2),
                           status_code=400, outcome="http_error", vendor_request_id="8c1d9a7e-4b1f-4e0e-9d51-guid",
                           error_code="bad_request", error_message="Missing input. Missing: campaign_id.",
                           error_details={"missingInputVars": ["campaign_id"], "errorDetail": "campaign_id is required"},
                           request_excerpt="POST /reports/call-data\naccount_id=77", response_excerpt='{"success": false}'))
    RequestLog.objects.bulk_create(rows)
    return clever, tele, bridge


class TestOpsPages:
    def test_log_filters_change_the_url_and_the_rows(self, signed_in_page, screenshot, live_server):
        _seed()
        page = signed_in_page("viewer", on="/log/")
        expect(page.get_by_test_id("log-row")).to_have_count(50)
        screenshot(page, "ops-log")
        page.get_by_test_id("filter-vendor").select_option("teletracker")
        expect(page).to_have_url(re.compile(r"/log/\?vendor=teletracker$"))
        expect(page.get_by_test_id("log-row").first).to_contain_text("teletracker-calls")
        rows = page.get_by_test_id("log-row")
        for i in range(rows.count()):
            expect(rows.nth(i)).to_contain_text("teletracker-calls")
        page.get_by_test_id("filter-outcome").select_option("http_error")
        expect(page).to_have_url(re.compile(r"vendor=teletracker&outcome=http_error$"))
        expect(page.get_by_test_id("log-row").first).to_contain_text("400")
        screenshot(page, "ops-log-filtered")
        # The filtered URL is shareable: a fresh load shows the same rows and selected filters.
        page.reload()
        expect(page.get_by_test_id("filter-vendor")).to_have_value("teletracker")
        expect(page.get_by_test_id("filter-outcome")).to_have_value("http_error")
        # "Older" loads more rows in place.
        page.get_by_test_id("filter-outcome").select_option("")
        page.get_by_test_id("filter-vendor").select_option("")
        expect(page.get_by_test_id("log-row")).to_have_count(50)
        page.get_by_test_id("log-older").click()
        expect(page.get_by_test_id("log-row")).to_have_count(81)
        expect(page.get_by_test_id("log-older")).to_have_count(0)
        # A stale or hand-edited link: the bad value is named, the other filters still apply.
        page.goto("/log/?vendor=teletracker&status=abc&since=yesterday")
        expect(page.get_by_test_id("filter-problems")).to_contain_text("Status “abc”")
        expect(page.get_by_test_id("filter-problems")).to_contain_text("From “yesterday”")
        expect(page.get_by_test_id("log-row").first).to_contain_text("teletracker-calls")
        screenshot(page, "ops-log-bad-filter")

    def test_overview_shows_connections_and_refreshes(self, signed_in_page, screenshot):
        clever, tele, _ = _seed()
        page = signed_in_page("operator")
        table = page.get_by_test_id("overview-table")
        expect(table).to_contain_text("clever-district")
        expect(table).to_contain_text("890 / 1,200 per min")
        expect(table).to_contain_text("Failing")
        screenshot(page, "ops-overview")
        Connection.objects.filter(pk=tele.pk).update(health="ok", health_reason="")
        page.evaluate("htmx.trigger('#overview-rows', 'poll')")  # what app.js does every 15 s
        # htmx drops the trigger while a poll of the same element is in flight (one read before the
        # update): the next 15 s poll brings the change then.
        expect(page.locator("#overview-teletracker-calls")).to_contain_text("OK", timeout=35_000)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    def test_error_details_and_history(self, signed_in_page, screenshot):
        _seed()
        page = signed_in_page("viewer", on="/log/?status=400")
        page.get_by_test_id("log-row").first.get_by_role("link").first.click()
        expect(page.get_by_test_id("vendor-request-id")).to_contain_text("8c1d9a7e-4b1f-4e0e-9d51-guid")
        expect(page.get_by_test_id("support-until")).to_contain_text("TeleTracker support keeps debug data")
        expect(page.get_by_test_id("vendor-error")).to_contain_text("campaign_id")
        expect(page.get_by_test_id("advice")).to_contain_text("Do not retry")
        screenshot(page, "ops-log-detail")
        page.goto("/errors/")
        expect(page.get_by_test_id("errors-chart").locator("svg").first).to_be_visible()
        expect(page.get_by_test_id("error-group").first).to_contain_text("503")
        screenshot(page, "ops-errors")
        page.get_by_test_id("errors-range").select_option("24h")
        expect(page).to_have_url(re.compile(r"/errors/\?range=24h"))
        page.get_by_test_id("error-group").first.get_by_role("link", name="In the log").click()
        expect(page.get_by_test_id("log-row").first).to_contain_text("503")


class TestAgainstTheSandbox:
    def test_test_button_then_a_broken_vendor_shows_everywhere(self, signed_in_page, vendors, screenshot, eager_celery):
        conn = factories.connection("teletracker", name="tt-sandbox", sandbox=vendors)
        page = signed_in_page("operator", on=f"/connections/{conn.name}/")
        marker = page.evaluate("window.__noReload = 1")  # survives only if the page is not reloaded
        assert marker == 1
        page.get_by_role("button", name="Test", exact=True).first.click()
        expect(page.locator(f"#test-result-{conn.name}")).to_contain_text("ok")
        assert page.evaluate("window.__noReload") == 1

        vendors.set_fault("teletracker", "http500_empty")
        page.get_by_role("button", name="Test", exact=True).first.click()
        # TeleTracker's policy retries a 5xx with backoff (5 tries): allow for it.
        expect(page.locator(f"#test-result-{conn.name}")).to_contain_text("HTTP 500", timeout=60_000)
        assert page.evaluate("window.__noReload") == 1

        page.goto("/")
        expect(page.locator(f"#overview-{conn.name}")).to_contain_text("HTTP 500")
        screenshot(page, "ops-overview-broken")
        page.goto(f"/log/?connection={conn.name}&status=500")
        expect(page.get_by_test_id("log-row").first).to_contain_text("500")
        page.get_by_test_id("log-row").first.get_by_role("link").first.click()
        expect(page.get_by_test_id("request-facts")).to_contain_text("HTTP 500")
        expect(page.get_by_test_id("retry-chain")).to_contain_text("#2")  # retried: same chain
        screenshot(page, "ops-log-detail-500")

        # A vendor error with a request id: TeleTracker's guid on a rejected password.
        vendors.clear_faults()
        bad = factories.connection("teletracker", name="tt-badpass", sandbox=vendors,
                                   secret={"username": "demo", "password": "wrong-password"})
        page.goto(f"/connections/{bad.name}/")
        page.get_by_role("button", name="Test", exact=True).first.click()
        expect(page.locator(f"#test-result-{bad.name}")).to_contain_text("failed")
        rid = RequestLog.objects.filter(connection=bad).exclude(vendor_request_id="").values_list(
            "vendor_request_id", flat=True).first()
        assert rid
        page.goto(f"/log/?request_id={rid}")
        page.get_by_test_id("log-row").first.get_by_role("link").first.click()
        expect(page.get_by_test_id("vendor-request-id")).to_contain_text(rid)
        expect(page.get_by_test_id("vendor-request-id").get_by_role("button", name="Copy")).to_be_visible()
