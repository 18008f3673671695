"""The second factor in Chromium, at 1366x768 and 390x844: an admin is held at enrolment after
signing in, scans (reads) the key, confirms with a code, sees the recovery codes once; the next
sign-in asks for a code; every state of the Security page and the code page fits (test_layout's
MEASURE)."""

from __future__ import annotations

import re
import time

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import TIMEOUT_MS, sign_in
from tests.e2e.test_layout import MEASURE

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def totp_code(secret_text: str, step_offset: int = 0) -> str:
    from base64 import b32decode

    raw = secret_text.replace(" ", "")
    key = b32decode(raw + "=" * (-len(raw) % 8))
    totp = TOTP(key)
    totp.time = time.time() + 30 * step_offset
    return f"{totp.token():06d}"


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}],
                         ids=["laptop", "phone"])
def test_admin_enrols_then_signs_in_with_a_code(browser, live_server, screenshot, settings, viewport):
    settings.SECOND_FACTOR_FOR_ADMINS = True
    admin = factories.user("admin")
    context = browser.new_context(base_url=live_server.url, viewport=viewport, is_mobile=viewport["width"] < 500)
    context.set_default_timeout(TIMEOUT_MS)
    errors, problems = [], []
    size = viewport["width"]

    def measure(name):
        problems.extend(f"{size} {name}: {p}" for p in page.evaluate(MEASURE, [size < 500, size]))
        screenshot(page, f"second-factor-{size}-{name}")

    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, admin.username)
        page.wait_for_url(re.compile(r"/accounts/security/$"))
        expect(page.get_by_text("Admins must use a second factor")).to_be_visible()
        page.goto("/connections/")  # anything else sends the admin back
        page.wait_for_url(re.compile(r"/accounts/security/$"))
        expect(page.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
        measure("enrol")
        secret = page.get_by_test_id("totp-secret").inner_text()
        page.get_by_label("Code").fill(totp_code(secret))
        page.get_by_role("button", name="Turn on").click()
        codes = page.get_by_test_id("recovery-codes").locator("li")
        expect(codes).to_have_count(10)
        measure("recovery-codes")
        page.get_by_role("link", name="I have saved them").click()
        page.wait_for_url(re.compile(re.escape(live_server.url) + r"/$"))
        page.goto("/accounts/security/")
        expect(page.get_by_test_id("second-factor-state")).to_have_text("On")
        assert secret.replace(" ", "")[:8] not in page.content().replace(" ", "")
        measure("enrolled")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/accounts/login/"))

        sign_in(page, admin.username)
        page.wait_for_url(re.compile(r"/accounts/two-factor/"))
        measure("code")
        page.get_by_label("Code").fill("000000" if totp_code(secret, 1) != "000000" else "111111")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_text(re.compile("That code is not right|Too many wrong codes"))).to_be_visible()
        time.sleep(1.2)  # django-otp's wait after one wrong code
        page.get_by_label("Code").fill(totp_code(secret, 1))  # the next step: the enrolment used this one
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(re.compile(re.escape(live_server.url) + r"/$"))
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    finally:
        context.close()
    assert not errors
    assert not problems, "\n".join(problems)
