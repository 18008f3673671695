"""The workflows issue 11 found broken under `make run`, on the real process tree (two gunicorn
workers, a Celery worker with two processes, beat, the sandbox), embedded and PostgreSQL + Redis:
Test all reaches 100 %, Rotate from the overview and from the detail page, a row's Test twice.

Run: REQUIRE_SERVICES=1 .venv/bin/python -m pytest tests/system -q
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.e2e.conftest import take_screenshot
from tests.system.pages import OK, press_test

pytestmark = [pytest.mark.system, pytest.mark.e2e]

# The five built-ins and the two declarative examples of vendors/ (issue 15).
DEMO = ("demo-cleverbridge", "demo-clever", "demo-cloverdx", "demo-teletracker", "demo-cleanlist",
        "demo-github", "demo-stripe")
# A worker runs all seven demo tests in a few seconds; allow for a loaded CI machine.
BATCH_TIMEOUT_MS = 30_000
ROTATE_TIMEOUT_MS = 20_000


def _refresh_calls(product) -> int:
    return len(product.sandbox("GET", "cleanlist/stats")["refresh_calls"])


class TestAsItRuns:
    def test_test_all_reaches_100_percent(self, product, signed_in):
        page = signed_in("operator").page
        expect(page.get_by_test_id("overview-table")).to_contain_text("demo-cleanlist")
        page.get_by_test_id("test-all").click()
        progress = page.get_by_test_id("test-all-progress")
        expect(progress).to_be_visible()
        # Every poll may land on either web worker; progress must be the same on both, and complete.
        expect(progress).to_contain_text(f"Tested {len(DEMO)} connections", timeout=BATCH_TIMEOUT_MS)
        expect(progress.locator("progress")).to_have_attribute("value", str(len(DEMO)))
        expect(progress).not_to_contain_text("is a Celery worker running?")
        take_screenshot(page, f"system-{product.backend}-test-all")
        # The finished bar stops polling: nothing asks for progress any more.
        polls = []
        page.on("request", lambda r: polls.append(r.url) if re.search(r"/test-all/[^/]+/$", r.url) else None)
        page.wait_for_timeout(2_500)
        assert not polls, f"still polling after completion: {polls}"
        # The summary tiles follow without a reload: nothing is left "Not tested yet".
        untested = page.get_by_test_id("health-summary").locator(".stat", has_text="Not tested yet")
        expect(untested.locator(".stat-value")).to_have_text("0", timeout=10_000)
        # Every row has been tested: none is left "Unknown" (not tested yet).
        page.reload()
        for name in DEMO:
            expect(page.locator(f"#overview-{name}")).not_to_contain_text(re.compile(r"Unknown|Not tested"))

    def test_a_rows_test_works_twice_in_a_row(self, product, signed_in):
        page = signed_in("operator").page
        row = page.locator("#overview-demo-clever")
        before = product.sandbox("GET", "clever/stats")["requests"]
        for attempt in (1, 2):
            try:
                answer = press_test(page, "demo-clever", within=row, timeout=10_000)
            except PlaywrightTimeoutError:
                pytest.fail(f"press {attempt} of the row's Test sent nothing")
            assert answer.status == 200, f"press {attempt}: HTTP {answer.status}"
            # The result badge ("ok"), or the row redrawn by the overview's refresh (health "OK").
            expect(row).to_contain_text(re.compile(r"\bok\b", re.I))
            # The test runs in the worker; the overview's own refresh may redraw the row before
            # the polled result arrives, so wait for the vendor to see it.
            deadline = time.monotonic() + 15
            while (after := product.sandbox("GET", "clever/stats")["requests"]) <= before \
                    and time.monotonic() < deadline:
                time.sleep(0.25)
            assert after > before, f"press {attempt} reached no vendor"
            before = after
            # The answer fits its cell: nothing spills out of the row sideways.
            assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")
        take_screenshot(page, f"system-{product.backend}-row-test-twice")

    def test_rotate_from_the_overview(self, product, signed_in):
        page = signed_in("operator").page
        calls = _refresh_calls(product)
        row = page.locator("#overview-demo-cleanlist")
        # A link or a button, whichever the page offers: what matters is that pressing it rotates.
        row.get_by_role("button", name="Rotate").or_(row.get_by_role("link", name="Rotate")).first.click()
        # It rotates at once, or opens the connection's Rotate panel where "Rotate now" is one press away.
        rotated = page.get_by_text("Rotated.")
        rotate_now = page.locator("#rotate-panel").get_by_role("button", name="Rotate now")
        expect(rotated.or_(rotate_now).first).to_be_visible(timeout=ROTATE_TIMEOUT_MS)
        if not rotated.is_visible():
            rotate_now.click()
        expect(rotated).to_be_visible(timeout=ROTATE_TIMEOUT_MS)
        assert _refresh_calls(product) == calls + 1, "exactly one refresh call at the vendor"
        take_screenshot(page, f"system-{product.backend}-rotate-overview")

    def test_rotate_from_the_detail_page(self, product, signed_in):
        page = signed_in("operator").page
        page.goto("/connections/demo-cleanlist/")
        calls = _refresh_calls(product)
        fingerprint = page.locator("#credential-card dd.mono").first.inner_text()
        page.locator("#rotate-panel").get_by_role("button", name="Rotate now").click()
        panel = page.locator("#rotate-panel")
        expect(panel).to_contain_text("Rotated.", timeout=ROTATE_TIMEOUT_MS)
        assert _refresh_calls(product) == calls + 1, "exactly one refresh call at the vendor"
        # The credential card shows the new secret's fingerprint without a reload, and the history the rotation.
        expect(page.locator("#credential-card dd.mono").first).not_to_have_text(fingerprint)
        expect(page.locator("#rotation-history")).to_contain_text(re.compile("succeeded", re.I))
        # The new token works: a Test right after passes.
        press_test(page, "demo-cleanlist")
        expect(page.locator("#test-result-demo-cleanlist")).to_contain_text(OK)
        take_screenshot(page, f"system-{product.backend}-rotate-detail")
