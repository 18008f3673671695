"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live_server.

Fixtures:
  browser                  one headless Chromium for the session (skipped when Chromium is missing);
                           defined in tests/conftest.py, shared with tests/system (one Playwright per process)
  page                     a fresh page (own cookies) at 1280x800 whose base URL is the live server, so
                           page.goto("/connections/") works; fails the test on uncaught JS errors or
                           console errors (clear `js_errors` in a test that expects some)
  phone_page               the same at 390x844 (an iPhone-sized viewport, touch enabled)
  js_errors                the list `page` collects its JS and console errors in
  signed_in_page(role)     signs in through the real login form as a new user in that role
                           (or `user=`), waits for the overview, returns the page
  screenshot(page, name)   saves tests/e2e/screenshots/<name>.png (full page; gitignored)

Every e2e test is marked `e2e` and `services`, and uses `django_db(transaction=True)`:
    pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests import factories

# Playwright's sync API runs an event loop in the main thread; Django's async-safety check would then
# refuse every ORM call made by the test itself (factories, assertions on the database).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).parent / "screenshots"
TIMEOUT_MS = 10_000
LOGIN_PATH = "/accounts/login/"


@pytest.fixture
def js_errors():
    return []


def _new_page(browser, live_server, js_errors, **context_options):
    context = browser.new_context(base_url=live_server.url, **context_options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("pageerror", lambda exc: js_errors.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: js_errors.append(f"console.error: {msg.text} at {msg.location.get('url')}")
            if msg.type == "error" else None)
    return context, page


@pytest.fixture
def page(browser, live_server, js_errors):
    context, page = _new_page(browser, live_server, js_errors, viewport=DESKTOP)
    yield page
    context.close()
    assert not js_errors, f"JavaScript errors in the browser: {js_errors}"


@pytest.fixture
def phone_page(browser, live_server, js_errors):
    context, page = _new_page(browser, live_server, js_errors, viewport=PHONE, is_mobile=True, has_touch=True,
                              device_scale_factor=2)
    yield page
    context.close()
    assert not js_errors, f"JavaScript errors in the browser: {js_errors}"


def sign_in(page, username: str, password: str = factories.PASSWORD) -> None:
    """Fill in and submit the real sign-in form (opening it first unless it is already shown)."""
    if LOGIN_PATH not in page.url:
        page.goto(LOGIN_PATH)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def signed_in_page(page, live_server):
    """signed_in_page("operator") or signed_in_page(user=some_user): the page, signed in, on the overview."""

    def _sign_in(role: str = "viewer", *, user=None, on=None):
        user = user or factories.user(role)
        sign_in(page, user.username)
        page.wait_for_url(re.compile(re.escape(live_server.url) + r"/(\?.*)?$"))
        if on:
            page.goto(on)
        return page

    return _sign_in


def wait_until(page, expression: str, arg=None, *, timeout_ms: int = TIMEOUT_MS) -> None:
    """page.wait_for_function without its polling through eval, which the pages' CSP (script-src
    'self') refuses whenever the condition is not true at once: evaluate() asks again instead."""
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_ms} ms: {expression}")
        page.wait_for_timeout(50)


def take_screenshot(page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / (re.sub(r"[^\w.-]+", "-", name) + ".png")
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture
def screenshot():
    """screenshot(page, "connections-list") -> tests/e2e/screenshots/connections-list.png"""
    return take_screenshot
