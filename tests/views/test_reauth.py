"""Re-authentication before secrets, host changes and alert channels; the session idle timeout
(issue 12 item 11)."""

from __future__ import annotations

import time

import pytest

from connections.models import AlertChannel, CredentialState
from dashboard.reauth import AUTH_AT, POLL_HEADER, SEEN_AT
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def age(client, key, seconds):
    session = client.session
    session[key] = time.time() - seconds
    session.save()


@pytest.fixture
def stale_admin(admin_client_):
    age(admin_client_, AUTH_AT, 11 * 60)
    return admin_client_


class TestReauth:
    def test_secret_page_asks_for_the_password_then_returns(self, stale_admin):
        connection = factories.connection("clever", secret={"token": "reauth-TOKEN-1"})
        url = f"/connections/{connection.name}/secret/"
        response = stale_admin.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/confirm/")
        page = stale_admin.get(response["Location"])
        assert b"Confirm your password" in page.content
        wrong = stale_admin.post("/accounts/confirm/", {"password": "nope", "next": url})
        assert wrong.status_code == 200 and b"That is not your password" in wrong.content
        right = stale_admin.post("/accounts/confirm/", {"password": factories.PASSWORD, "next": url})
        assert right.status_code == 302 and right["Location"] == url
        assert stale_admin.get(url).status_code == 200

    def test_post_with_a_stale_password_changes_nothing(self, stale_admin):
        connection = factories.connection("clever", base_url="https://api.example.com", secret={"token": "t" * 20})
        response = stale_admin.post(f"/connections/{connection.name}/edit/",
                                    {"base_url": "https://other.example.com", "test_interval": 0,
                                     "refresh_interval": 0, "enabled": "on"})
        assert response.status_code == 302 and "/accounts/confirm/" in response["Location"]
        connection.refresh_from_db()
        assert connection.base_url == "https://api.example.com"
        assert connection.credentials.filter(state=CredentialState.ACTIVE).exists()

    def test_new_connection_and_alert_channel_need_it_too(self, stale_admin):
        assert "/accounts/confirm/" in stale_admin.get("/connections/new/")["Location"]
        response = stale_admin.post("/alerts/channels/new/", {"name": "ops", "kind": "email", "target": "ops@example.com"})
        assert "/accounts/confirm/" in response["Location"]
        assert not AlertChannel.objects.exists()

    def test_fresh_sign_in_needs_no_confirmation(self, admin_client_):
        assert admin_client_.get("/connections/new/").status_code == 200

    def test_next_cannot_leave_the_site(self, stale_admin):
        response = stale_admin.post("/accounts/confirm/", {"password": factories.PASSWORD,
                                                           "next": "https://evil.example.net/"})
        assert response["Location"] == "/"


class TestIdleTimeout:
    def test_idle_session_is_signed_out(self, viewer_client, settings):
        age(viewer_client, SEEN_AT, settings.SESSION_IDLE_TIMEOUT + 5)
        response = viewer_client.get("/connections/")
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
        assert "_auth_user_id" not in viewer_client.session
        page = viewer_client.get(response["Location"]).content.decode()
        assert "signed out after 30 minutes without activity" in page

    def test_activity_keeps_it_and_polls_do_not(self, viewer_client, settings):
        age(viewer_client, SEEN_AT, settings.SESSION_IDLE_TIMEOUT - 60)
        assert viewer_client.get("/", headers={"HX-Request": "true", POLL_HEADER: "1"}).status_code == 200
        assert time.time() - viewer_client.session[SEEN_AT] > settings.SESSION_IDLE_TIMEOUT - 120  # not renewed
        assert viewer_client.get("/connections/").status_code == 200
        assert time.time() - viewer_client.session[SEEN_AT] < 5  # a real request renews it
