"""Signing in and out through the real form, in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import LOGIN_PATH, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]


class TestSignIn:
    def test_sign_in_shows_name_and_role_then_sign_out(self, page, live_server, screenshot):
        user = factories.user("viewer")
        page.goto(LOGIN_PATH)
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        screenshot(page, "login")

        sign_in(page, user.username)

        expect(page).to_have_url(live_server.url + "/")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        expect(page.get_by_test_id("user-name")).to_have_text(user.username)
        expect(page.get_by_test_id("user-role")).to_have_text("viewer")
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
        expect(nav.get_by_role("link", name="Connections")).not_to_have_attribute("aria-current", "page")
        screenshot(page, "overview")

        page.get_by_role("button", name="Sign out").click()

        expect(page).to_have_url(live_server.url + LOGIN_PATH)
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.get_by_test_id("user-name")).to_have_count(0)
        page.goto("/")  # the session is really gone
        expect(page).to_have_url(re.compile(re.escape(LOGIN_PATH) + r"\?next=/$"))

    def test_wrong_password_shows_an_error(self, page, live_server, screenshot):
        user = factories.user("viewer")

        sign_in(page, user.username, "not-the-password")

        expect(page).to_have_url(live_server.url + LOGIN_PATH)
        error = page.get_by_role("alert")
        expect(error).to_contain_text("correct username and password")
        expect(page.get_by_label("Username")).to_have_value(user.username)
        expect(page.get_by_label("Password")).to_have_value("")
        screenshot(page, "login-error")

    def test_anonymous_visit_redirects_to_sign_in_and_back(self, page, live_server):
        user = factories.user("viewer")

        page.goto("/connections/")

        expect(page).to_have_url(re.compile(re.escape(LOGIN_PATH) + r"\?next=/connections/$"))
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        sign_in(page, user.username)
        expect(page).to_have_url(live_server.url + "/connections/")
        expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Connections")) \
            .to_have_attribute("aria-current", "page")


def test_a_tab_opened_before_signing_in_again_says_reload(page, live_server, js_errors):
    """Found clicking through `make run`: sign out and in again in a second tab, press Test in the
    first: "You do not have permission for that action (403). Ask an admin if you need it."."""
    user = factories.user("operator")
    c = factories.connection("cleanlist", name="old-tab", secret={"token": "t"})
    sign_in(page, user.username)
    page.wait_for_url(live_server.url + "/")
    page.goto(f"/connections/{c.name}/")
    other = page.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Sign out").click()
    sign_in(other, user.username)
    other.wait_for_url(live_server.url + "/")
    page.get_by_role("button", name="Test", exact=True).click()
    alert = page.locator("#messages [data-htmx-error]")
    expect(alert).to_contain_text("This page is out of date")
    expect(alert).to_contain_text("Reload the page, then try again.")
    assert "Ask an admin" not in alert.inner_text()
    assert all("403" in e for e in js_errors)  # the browser logs the refused request
    js_errors.clear()
