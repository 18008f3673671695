"""Single sign-on in Chromium against a real OpenID Connect provider running as its own process
(tests/authserver: django-oauth-toolkit, PKCE required, RS256 ID tokens with a groups claim):
the user is made at the first sign-in with the role their groups map to; groups that no longer map
end the access at the next sign-in; the password sign-in still works (break-glass); an SSO admin
is held at the second-factor enrolment; re-authentication goes back to the provider."""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import expect

from connections.models import AuditEvent, ExternalIdentity
from dashboard.reauth import AUTH_AT
from tests import factories
from tests.authserver.fixture import CLIENT_ID, CLIENT_SECRET, authserver  # noqa: F401 - the fixture
from tests.e2e.conftest import TIMEOUT_MS, sign_in
from tests.e2e.test_layout import MEASURE

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROLE_MAP = {"switchboard-admins": "admin", "switchboard-operators": "operator", "switchboard-viewers": "viewer"}


@pytest.fixture
def sso(settings, authserver):  # noqa: F811 - the fixture imported above
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_DISCOVERY_URL = authserver.discovery_url
    settings.OIDC_ROLE_MAP = ROLE_MAP
    settings.OIDC_PROVIDER_NAME = "Test IdP"
    settings.SECOND_FACTOR_FOR_ADMINS = False
    return authserver


def base(live_server) -> str:
    # The provider's registered redirect URIs are http://127.0.0.1/... (any port, RFC 8252).
    return live_server.url.replace("localhost", "127.0.0.1")


def new_context(browser, live_server, viewport=None):
    viewport = viewport or {"width": 1366, "height": 768}
    context = browser.new_context(base_url=base(live_server), viewport=viewport, is_mobile=viewport["width"] < 500)
    context.set_default_timeout(TIMEOUT_MS)
    return context


def sso_sign_in(page, username: str, password: str, *, consent: bool = True) -> None:
    page.goto("/accounts/login/")
    page.get_by_test_id("sso-sign-in").click()
    if page.get_by_label("User name").count():
        page.get_by_label("User name").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
    if consent:
        page.get_by_role("button", name="Authorize").click()


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}],
                         ids=["laptop", "phone"])
def test_first_sign_in_makes_the_user_and_groups_decide_the_role(browser, live_server, sso, screenshot, viewport):
    sso.seed({"users": [{"username": "olga", "password": "olga-password-1", "email": "olga@example.test",
                         "groups": ["switchboard-operators"]}]})
    User.objects.filter(username__startswith="olga").delete()
    context = new_context(browser, live_server, viewport)
    errors = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto("/accounts/login/")
        expect(page.get_by_test_id("sso-sign-in")).to_have_text("Sign in with Test IdP")
        problems = page.evaluate(MEASURE, [viewport["width"] < 500, viewport["width"]])
        assert not problems, problems
        screenshot(page, f"sso-login-{viewport['width']}")
        sso_sign_in(page, "olga", "olga-password-1")
        page.wait_for_url(re.compile(re.escape(base(live_server)) + r"/$"))
        expect(page.get_by_test_id("user-name")).to_have_text("olga")
        expect(page.get_by_test_id("user-role")).to_contain_text("operator")
        user = User.objects.get(username="olga")
        assert not user.has_usable_password() and ExternalIdentity.objects.filter(user=user).exists()
        assert AuditEvent.objects.filter(action="user.create", details__first_password="sso").exists()

        # The provider moves olga to viewers: the next sign-in gives her that role.
        page.get_by_role("button", name="Sign out").click()
        sso.seed({"users": [{"username": "olga", "password": "olga-password-1", "groups": ["switchboard-viewers"]}]})
        sso_sign_in(page, "olga", "olga-password-1")
        page.wait_for_url(re.compile(re.escape(base(live_server)) + r"/$"))
        expect(page.get_by_test_id("user-role")).to_contain_text("viewer")

        # Her groups stop mapping to any role: the next sign-in is refused and the role is gone.
        page.get_by_role("button", name="Sign out").click()
        sso.seed({"users": [{"username": "olga", "password": "olga-password-1", "groups": ["marketing"]}]})
        sso_sign_in(page, "olga", "olga-password-1")
        page.wait_for_url(re.compile(r"/accounts/login/"))
        expect(page.get_by_text("none of your groups there gives you a role")).to_be_visible()
        screenshot(page, f"sso-refused-{viewport['width']}")
        assert not User.objects.get(username="olga").groups.exists()
        page.goto("/connections/")
        page.wait_for_url(re.compile(r"/accounts/login/"))

        # The local break-glass account still signs in with its password.
        admin = factories.user("admin", username="breakglass")
        sign_in(page, admin.username)
        page.wait_for_url(re.compile(r"/connections/$"))
        expect(page.get_by_test_id("user-name")).to_have_text("breakglass")
    finally:
        context.close()
    assert not errors


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}],
                         ids=["laptop", "phone"])
def test_sso_admin_enrols_a_second_factor_and_reauth_goes_to_the_provider(browser, live_server, sso, settings,
                                                                          screenshot, viewport):
    settings.SECOND_FACTOR_FOR_ADMINS = True
    sso.seed({"users": [{"username": "alice", "password": "alice-password-1", "groups": ["switchboard-admins"]}]})
    connection = factories.connection("clever", name="sso-reauth", secret={"token": "sso-reauth-TOKEN-0001"})
    context = new_context(browser, live_server, viewport)
    try:
        page = context.new_page()
        sso_sign_in(page, "alice", "alice-password-1")
        # The test provider asserts no second factor (no amr): Switchboard's own is required.
        page.wait_for_url(re.compile(r"/accounts/security/$"))
        expect(page.get_by_text("Admins must use a second factor")).to_be_visible()
        expect(page.get_by_text("You sign in with single sign-on")).to_be_visible()

        settings.SECOND_FACTOR_FOR_ADMINS = False  # the rest is about re-authentication
        key = next(c["value"] for c in context.cookies() if c["name"] == django_settings.SESSION_COOKIE_NAME)
        session = SessionStore(session_key=key)
        session[AUTH_AT] = time.time() - 3600
        session.save()
        page.goto(f"/connections/{connection.name}/secret/")
        page.wait_for_url(re.compile(r"/accounts/confirm/"))
        problems = page.evaluate(MEASURE, [viewport["width"] < 500, viewport["width"]])
        assert not problems, problems
        screenshot(page, f"sso-reauth-{viewport['width']}")
        page.get_by_test_id("sso-reauth").click()
        # prompt=login: the provider asks for the password again.
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill("alice-password-1")
        page.get_by_role("button", name="Sign in").click()
        if page.get_by_role("button", name="Authorize").count():
            page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(re.compile(rf"/connections/{connection.name}/secret/$"))
        expect(page.get_by_role("heading", name=re.compile("secret", re.I))).to_be_visible()
    finally:
        context.close()
