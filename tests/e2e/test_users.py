"""User management in Chromium: an admin adds an operator, who sets a password through the
one-time link in a browser of their own and signs in; the pages fit a laptop and a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import LOGIN_PATH, TIMEOUT_MS, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]
NEW_PASSWORD = "violet-Harbour-Kettle-31"


def test_admin_adds_an_operator_who_sets_a_password_and_signs_in(signed_in_page, browser, live_server,
                                                                 screenshot, js_errors):
    page = signed_in_page("admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    page.get_by_role("link", name="Add user").click()
    page.get_by_label("Username").fill("erin")
    page.get_by_role("radio", name=re.compile(r"Operator:")).check()
    screenshot(page, "users-add")
    page.get_by_role("button", name="Add user").click()

    expect(page.get_by_role("heading", name="erin added")).to_be_visible()
    link = page.get_by_test_id("set-password-link").input_value()
    assert link.startswith(live_server.url + "/accounts/set-password/")
    screenshot(page, "users-link")

    # The new operator, in a browser of their own (no cookies shared with the admin).
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        theirs = context.new_page()
        theirs.on("console", lambda m: js_errors.append(m.text) if m.type == "error" else None)
        theirs.goto(link)
        expect(theirs.get_by_role("heading", name="Choose your password")).to_be_visible()
        assert "/set-password/set-password/" not in theirs.url and theirs.url.endswith("/set-password/")
        screenshot(theirs, "users-set-password-phone")
        theirs.get_by_label(re.compile(r"^New password:?$")).fill(NEW_PASSWORD)
        theirs.get_by_label("New password confirmation").fill(NEW_PASSWORD)
        theirs.get_by_role("button", name="Set password").click()

        expect(theirs).to_have_url(live_server.url + LOGIN_PATH)
        expect(theirs.get_by_role("status").filter(has_text="Password set for erin")).to_be_visible()
        sign_in(theirs, "erin", NEW_PASSWORD)
        expect(theirs).to_have_url(live_server.url + "/")
        expect(theirs.get_by_test_id("user-role")).to_have_text("operator")
        expect(theirs.get_by_role("navigation", name="Main").get_by_role("link", name="Users")).to_have_count(0)

        theirs.goto(link)  # the link worked once
        expect(theirs.get_by_role("heading", name="This link no longer works")).to_be_visible()
    finally:
        context.close()

    page.goto("/users/")
    row = page.locator("tr", has_text="erin")
    expect(row.get_by_label("Role of erin")).to_have_value("operator")
    expect(row).not_to_contain_text("never")
    expect(row).not_to_contain_text("no password yet")


@pytest.mark.parametrize("size", [(1366, 768), (390, 844)], ids=["laptop", "phone"])
def test_user_pages_fit_without_sideways_scroll(browser, live_server, screenshot, size):
    width, height = size
    admin = factories.user("admin", username="ada")
    factories.user("operator", username="an-operator-with-a-rather-long-name@example.com")
    gone = factories.user("viewer", username="former-viewer")
    gone.is_active = False
    gone.save()
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        sign_in(page, admin.username)
        page.wait_for_url(live_server.url + "/")
        for path, name in (("/users/", "users"), ("/users/new/", "users-new"), ("/accounts/password/", "password")):
            page.goto(path)
            overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
            screenshot(page, f"{name}-{width}x{height}")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}x{height}"
        page.goto("/users/")
        page.once("dialog", lambda d: d.accept())
        page.locator("tr", has_text="former-viewer").get_by_role("button", name="Reactivate").click()
        expect(page.get_by_role("status").filter(has_text="former-viewer can sign in again")).to_be_visible()
    finally:
        context.close()
