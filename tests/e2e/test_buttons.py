"""Buttons that must keep working in the browser (issue 11): the overview row's Test pressed again
and again, the heading's health following an in-place Test, keyboard focus after Enter, and the
overview's Rotate reaching a page that rotates (refresh at the vendor, or a pasted secret)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from connections.models import Credential, CredentialState
from tests import factories
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def _posts_to(page, path: str) -> list[str]:
    """Every POST the page sends to `path`, recorded as it happens."""
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url)
            if request.method == "POST" and request.url.endswith(path) else None)
    return sent


class TestOverviewRowTest:
    def test_row_test_works_again_and_again_and_its_result_stays_in_its_cell(self, signed_in_page, vendors,
                                                                            screenshot):
        conn = factories.connection("cleverbridge", name="bridge-row", sandbox=vendors)
        page = signed_in_page("operator")
        sent = _posts_to(page, f"/connections/{conn.name}/test/")
        row = page.locator(f"#overview-{conn.name}")
        result = page.locator(f"#overview-{conn.name}-result")
        row.get_by_role("button", name="Test", exact=True).click()
        expect(result).to_contain_text("ok")
        vendors.set_fault("cleverbridge", "malformed_json")  # a 200 that is not JSON: failed, no retry
        row.get_by_role("button", name="Test", exact=True).click()
        expect(result).to_contain_text("failed")
        vendors.clear_faults()
        row.get_by_role("button", name="Test", exact=True).click()
        expect(result).to_contain_text("ok")
        assert len(sent) == 3
        # The vendor's (long) message wraps inside the actions cell instead of spilling over the page.
        vendors.set_fault("cleverbridge", "malformed_json")
        row.get_by_role("button", name="Test", exact=True).click()
        expect(result).to_contain_text("not valid JSON")
        cell = row.locator("td.actions").bounding_box()
        box = result.bounding_box()
        assert box["x"] + box["width"] <= cell["x"] + cell["width"] + 1
        assert result.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
        screenshot(page, "overview-row-test-failed")

    def test_resume_inside_an_overview_result_lands_in_that_result(self, signed_in_page, vendors):
        """The result partial is shared with the detail page: its Resume form targets the result box it
        sits in, not an id only the detail page has."""
        conn = factories.connection("teletracker", name="tt-paused", sandbox=vendors,
                                    secret={"username": "demo", "password": "wrong-password"})
        page = signed_in_page("operator")
        result = page.locator(f"#overview-{conn.name}-result")
        page.locator(f"#overview-{conn.name}").get_by_role("button", name="Test", exact=True).click()
        expect(result).to_contain_text("paused")
        result.get_by_role("button", name="Resume scheduled tests").click()
        expect(result).to_contain_text("Scheduled tests resumed.")

    def test_list_row_test_works_twice(self, signed_in_page, vendors):
        conn = factories.connection("cleverbridge", name="bridge-list", sandbox=vendors)
        page = signed_in_page("operator", on="/connections/")
        sent = _posts_to(page, f"/connections/{conn.name}/test/")
        button = page.locator(f"#connection-{conn.name}").get_by_role("button", name="Test", exact=True)
        button.click()
        expect(page.locator(f"#test-result-{conn.name}")).to_contain_text("just now")
        vendors.set_fault("cleverbridge", "malformed_json")
        button.click()
        expect(page.locator(f"#test-result-{conn.name}")).to_contain_text("failed")
        assert len(sent) == 2


class TestHealthFollowsTheTest:
    def test_heading_badge_turns_failing_with_the_panel(self, signed_in_page, vendors):
        conn = factories.connection("cleverbridge", name="bridge-head", sandbox=vendors)
        page = signed_in_page("operator", on=f"/connections/{conn.name}/")
        heading = page.get_by_role("heading", level=1)
        page.get_by_role("button", name="Test", exact=True).click()
        expect(page.locator(f"#test-result-{conn.name}")).to_contain_text("ok")
        expect(heading).to_contain_text("OK")
        vendors.set_fault("cleverbridge", "malformed_json")
        page.get_by_role("button", name="Test", exact=True).click()
        expect(page.locator(f"#test-result-{conn.name}")).to_contain_text("Failing")
        expect(heading).to_contain_text("Failing")
        expect(heading.locator(".badge")).to_have_class("badge badge-failing")

    def test_overview_row_badge_follows_its_test(self, signed_in_page, vendors):
        conn = factories.connection("cleverbridge", name="bridge-badge", sandbox=vendors)
        vendors.set_fault("cleverbridge", "malformed_json")
        page = signed_in_page("operator")
        row = page.locator(f"#overview-{conn.name}")
        row.get_by_role("button", name="Test", exact=True).click()
        expect(page.locator(f"#overview-{conn.name}-result")).to_contain_text("failed")
        expect(row.locator("td").nth(1).locator(".badge")).to_have_text("Failing")


class TestKeyboard:
    @pytest.mark.parametrize("where", ["detail", "overview"])
    def test_focus_stays_on_test_after_enter(self, signed_in_page, vendors, where):
        conn = factories.connection("cleverbridge", name=f"bridge-kb-{where}", sandbox=vendors)
        page = signed_in_page("operator", on="/" if where == "overview" else f"/connections/{conn.name}/")
        scope = page.locator(f"#overview-{conn.name}") if where == "overview" else page.locator("#connection-test")
        button = scope.get_by_role("button", name="Test", exact=True)
        result = page.locator(f"#overview-{conn.name}-result" if where == "overview" else f"#test-result-{conn.name}")
        for _ in range(2):  # and again, from where focus was left
            button.focus()
            page.keyboard.press("Enter")
            expect(result).to_contain_text("ok")
            expect(button).to_be_focused()
            assert page.evaluate("document.activeElement.tagName") == "BUTTON"
            result.evaluate("el => { el.textContent = ''; }")


    def test_focus_survives_the_overview_refresh(self, signed_in_page, vendors):
        """The rows re-render every 15 s (outerHTML): the focused control's twin gets the focus back."""
        conn = factories.connection("cleverbridge", name="bridge-kb-poll", sandbox=vendors)
        page = signed_in_page("operator")
        row = page.locator(f"#overview-{conn.name}")
        for name, role in (("Log", "link"), ("Test", "button")):
            control = row.get_by_role(role, name=name, exact=True)
            control.focus()
            page.evaluate("window.__oldRows = document.querySelector('#overview-rows')")
            # Ask for the refresh now. htmx drops it while the 15 s poll of the same element is in
            # flight, and then that poll's answer replaces the rows: wait for whichever comes.
            page.evaluate("htmx.trigger('#overview-rows', 'poll')")
            wait_until(page, "document.querySelector('#overview-rows') !== window.__oldRows", timeout_ms=35_000)
            expect(control).to_be_focused()


class TestRotateFromTheOverview:
    def test_staged_replacement_from_the_overview(self, signed_in_page, vendors):
        conn = factories.connection("cleverbridge", name="bridge-rot", sandbox=vendors)
        page = signed_in_page("operator")
        page.locator(f"#overview-{conn.name}").get_by_role("link", name="Rotate").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(conn.name)
        panel = page.locator("#rotate-panel")
        expect(panel.get_by_role("button", name="Verify and replace")).to_be_visible()

    def test_refresh_at_the_vendor_from_the_overview(self, signed_in_page, vendors):
        conn = factories.connection("cleanlist", name="cleanlist-rot", sandbox=vendors)
        page = signed_in_page("operator")
        page.on("dialog", lambda dialog: dialog.accept())
        page.locator(f"#overview-{conn.name}").get_by_role("link", name="Rotate").click()
        button = page.locator("#rotate-panel").get_by_role("button", name="Rotate now")
        expect(button).to_be_visible()
        sent = _posts_to(page, f"/connections/{conn.name}/rotate/")
        button.click()
        expect(page.locator("#rotate-panel")).to_contain_text("Rotat")  # queued / rotating / rotated
        assert len(sent) == 1
        assert Credential.objects.filter(connection=conn, state=CredentialState.ACTIVE).count() == 1
