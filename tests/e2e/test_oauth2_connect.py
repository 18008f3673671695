"""Connect in Chromium: from the connection page to the real authorization server's sign-in and
consent pages (django-oauth-toolkit, tests/authserver), back to the callback, and a stored grant
that works."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from playwright.sync_api import expect

from connections.models import Connection, RequestLog
from connections.outbound.client import RequestSpec, send
from connections.services.audit import Actor
from connections.services.vault import active_credential
from tests import factories
from tests.authserver.fixture import CLIENT_ID, CLIENT_SECRET, DEFAULT_REDIRECT_URIS

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def oauth2_connection(authserver, live_server, name="oauth-connect"):
    authserver.seed({"applications": [{
        "name": "Switchboard", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "redirect_uris": DEFAULT_REDIRECT_URIS + [live_server.url + "/oauth2/callback/"]}]})
    return factories.connection("oauth2", name=name, base_url=authserver.url,
                                secret={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                                options={"token_url": authserver.token_url, "authorize_url": authserver.authorize_url,
                                         "test_path": "/api/me", "scope": "read"})


def test_connect_signs_in_consents_and_stores_the_grant(signed_in_page, live_server, authserver, screenshot):
    conn = oauth2_connection(authserver, live_server)
    page = signed_in_page("admin", on=f"/connections/{conn.name}/")
    card = page.locator("#credential-card")
    expect(card).to_contain_text("client credentials")
    screenshot(page, "oauth2-connect-before-1366")
    page.get_by_role("button", name="Connect", exact=True).click()
    # The authorization server's own pages: sign in, then the consent page.
    page.wait_for_url(re.compile(re.escape(authserver.url) + r"/accounts/login/"))
    sent = unquote(page.url)
    assert "code_verifier" not in sent and "state=" in sent and "code_challenge_method=S256" in sent
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Authorize Switchboard?")).to_be_visible()
    screenshot(page, "oauth2-consent-page")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(re.compile(re.escape(live_server.url) + f"/connections/{conn.name}/"))
    expect(page.locator(".message-success")).to_contain_text("Connected")
    expect(card).to_contain_text("refresh token (rotated on every refresh)")
    expect(card).to_contain_text("v2")
    screenshot(page, "oauth2-connect-after-1366")
    assert [r["grant_type"] for r in authserver.token_log()].count("authorization_code") >= 1
    conn = Connection.objects.get(pk=conn.pk)
    secret = active_credential(conn).reveal()
    assert secret["refresh_token"]
    # The code and the verifier are in no log row; the grant works for the API.
    for row in RequestLog.objects.filter(connection=conn, operation="connect"):
        assert "code_verifier=" not in row.request_excerpt or "[REDACTED]" in row.request_excerpt
        assert secret["refresh_token"] not in row.response_excerpt
    assert send(conn, RequestSpec("GET", "/api/me"), actor=Actor(label="t")).data["username"] == "alice"
    assert conn.audit_events.filter(action="oauth2.connect").exists()


def test_consent_refused_changes_nothing(signed_in_page, live_server, authserver, screenshot):
    conn = oauth2_connection(authserver, live_server, name="oauth-refused")
    before = active_credential(conn).pk
    page = signed_in_page("admin", on=f"/connections/{conn.name}/")
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_url(re.compile(re.escape(authserver.url) + r"/accounts/login/"))
    page.fill("#id_username", "olga")
    page.fill("#id_password", "olga-password-1")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(re.compile(re.escape(live_server.url) + f"/connections/{conn.name}/"))
    expect(page.locator(".message-error")).to_contain_text("access_denied")
    screenshot(page, "oauth2-connect-refused-1366")
    assert active_credential(Connection.objects.get(pk=conn.pk)).pk == before
    # The answer cannot be replayed: the state was used once.
    page.go_back()
