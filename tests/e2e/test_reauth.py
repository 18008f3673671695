"""The "Confirm your password" page in Chromium: an admin whose sign-in is older than the
re-auth window opens "Replace secret", confirms the password and lands back on that page;
at a laptop's 1366x768 and a phone's 390x844."""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from dashboard.reauth import AUTH_AT
from tests import factories
from tests.e2e.conftest import TIMEOUT_MS, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}],
                         ids=["laptop", "phone"])
def test_confirm_password_returns_to_the_secret_page(browser, live_server, screenshot, viewport):
    admin = factories.user("admin")
    connection = factories.connection("clever", name="reauth-e2e", secret={"token": "reauth-e2e-TOKEN-0001"})
    context = browser.new_context(base_url=live_server.url, viewport=viewport, is_mobile=viewport["width"] < 500)
    context.set_default_timeout(TIMEOUT_MS)
    errors = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, admin.username)
        page.wait_for_url(re.compile(re.escape(live_server.url) + r"/(\?.*)?$"))
        # The sign-in happened 11 minutes ago, as far as the server knows.
        key = next(c["value"] for c in context.cookies() if c["name"] == django_settings.SESSION_COOKIE_NAME)
        session = SessionStore(session_key=key)
        session[AUTH_AT] = time.time() - 11 * 60
        session.save()
        page.goto(f"/connections/{connection.name}/secret/")
        expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
        assert "/accounts/confirm/" in page.url
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"sideways scroll: {width}px"
        page.get_by_label("Password").fill("not-my-password")
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_text("That is not your password")).to_be_visible()
        expect(page.get_by_text("your password from the last 10 minutes")).to_be_visible()
        screenshot(page, f"reauth-confirm-{viewport['width']}")
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_url(re.compile(rf"/connections/{connection.name}/secret/$"))
        expect(page.get_by_role("heading", name=re.compile("secret", re.I))).to_be_visible()
        screenshot(page, f"reauth-returned-{viewport['width']}")
    finally:
        context.close()
    assert not errors
