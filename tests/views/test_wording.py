"""Words a user reads (issue 11 item 14): a resolved alert that does not say "is failing", one full
stop per sentence, "just now" rather than "0 minutes ago", and a lockout page that says how long."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from connections import alerts
from connections.models import AlertEvent, Connection, Health, RotationState
from connections.rotation import rotate
from connections.services.audit import Actor
from tests import factories
from tests.factories import ConnectionFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db]
HX = {"HX-Request": "true"}


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


class TestResolvedAlert:
    def test_resolved_message_says_back_to_normal_and_how_long_without_contradicting_itself(
            self, django_capture_on_commit_callbacks):
        c = factories.connection("cloverdx", name="demo-cloverdx")
        Connection.objects.filter(pk=c.pk).update(health=Health.FAILING, health_reason="HTTP 503 from the server.")
        with django_capture_on_commit_callbacks(execute=True):
            alerts.evaluate(now=timezone.now() - timedelta(minutes=12))
        Connection.objects.filter(pk=c.pk).update(health=Health.OK, health_reason="")
        with django_capture_on_commit_callbacks(execute=True):
            alerts.evaluate()
        end = AlertEvent.objects.get(connection=c, transition="end")
        assert end.message.startswith("Resolved — Connection failing: demo-cloverdx is back to normal after 12 min.")
        assert "(demo-cloverdx is failing" not in end.message
        assert "The alert was: demo-cloverdx is failing — HTTP 503 from the server." in end.message
        assert ".." not in end.message


class TestOneFullStop:
    def test_refused_refresh_message_has_one_full_stop(self, vendors):
        connection = factories.connection("cleanlist", sandbox=vendors, secret={"token": "not-a-live-token"})
        outcome = rotate(connection=connection, actor=Actor(label="op", via="user"))
        assert outcome.state == RotationState.FAILED
        assert "Invalid or rescinded token" in outcome.message
        assert ".." not in outcome.message, outcome.message
        assert re.search(r"token\. The current secret", outcome.message), outcome.message


class TestJustNow:
    def test_server_rendered_times_say_just_now(self, viewer_client):
        now = timezone.now()
        c = ConnectionFactory(name="clever-now", rl_limit=1200, rl_remaining=1100, rl_reset_at=now + timedelta(seconds=30),
                                      rl_observed_at=now, last_test_at=now,
                                      last_test_result={"ok": True, "status_code": 200, "duration_ms": 87,
                                                        "at": now.isoformat()})
        pages = [viewer_client.get("/"), viewer_client.get("/connections/"),
                 viewer_client.get(f"/connections/{c.name}/headroom/", headers=HX),
                 viewer_client.get(f"/connections/{c.name}/")]
        for page in pages:
            assert "0 minutes" not in text(page)
        assert "seen just now" in text(pages[2])
        assert "just now" in text(pages[0]) and "just now" in text(pages[1])

    def test_older_times_still_count_minutes(self, viewer_client):
        c = ConnectionFactory(name="clever-old", last_test_at=timezone.now() - timedelta(minutes=3))
        assert "3 minutes ago" in text(viewer_client.get("/connections/"))
        assert c.name in text(viewer_client.get("/connections/"))


class TestLockoutPage:
    def test_says_how_long_the_lockout_lasts(self, client, viewer, settings):
        for _ in range(5):
            client.post("/accounts/login/", {"username": viewer.username, "password": "wrong-password"})
        locked = client.post("/accounts/login/", {"username": viewer.username, "password": "wrong-password"})
        assert locked.status_code == 429
        page = text(locked)
        minutes = round(settings.AXES_COOLOFF_TIME * 60)
        assert f"locked for {minutes} min after the last failed attempt" in page, page
        assert f"Try again in {minutes} min" in page
        assert f"axes_reset_username {viewer.username}" in page


class TestFormErrorsSayWhatWasTyped:
    """Found clicking through `make run`: a mistyped webhook URL came back as a flash message
    "The channel was not added: target: ..." above an empty form (the URL typed was gone, the field
    named by its key). Now the form comes back as typed, the error under its field."""

    def test_bad_channel_comes_back_as_typed_with_the_error_on_its_field(self, admin_client_):
        url = "http://[::1/hooks/ops"
        response = admin_client_.post("/alerts/channels/new/", {"name": "ops-hook", "kind": "webhook", "target": url})
        assert response.status_code == 400
        html = response.content.decode()
        assert 'value="ops-hook"' in html and f'value="{url}"' in html
        form = response.context["channel_form"]
        assert "give the webhook's full http(s) URL" in " ".join(form.errors["target"])
        assert "was not added" in text(response) and "target:" not in text(response)
        assert 'action="/alerts/channels/new/#add-channel"' in html and 'id="add-channel"' in html

    def test_flash_messages_name_a_field_by_its_label(self, admin_client_):
        c = factories.connection("cleanlist", name="quiet-me", secret={"token": "t"})
        response = admin_client_.post(f"/connections/{c.name}/maintenance/", {"hours": "-1", "reason": ""}, follow=True)
        page = text(response)
        assert "Maintenance window not set: Silence alerts for (hours): " in page and "hours: Ensure" not in page


class TestCredentialCardTimes:
    """Found clicking through `make run`: the TeleTracker session's expiry read
    "2026-11-29T13:37:05.926256+00:00" and the card's other times "Nov. 29, 2026, 12:36 p.m.", on a
    site that writes every other time as 2026-11-29 12:36."""

    def test_times_on_the_credential_card_are_spelled_like_everywhere_else(self, viewer_client):
        from connections.models import Credential

        c = factories.connection("teletracker", name="tt-times", secret={
            "username": "u", "password": "p", "account_id": "1", "auth_scheme": "bearer_session"})
        expires = (timezone.now() + timedelta(minutes=59, seconds=30)).replace(microsecond=926256)
        Credential.objects.filter(connection=c, state="active").update(
            meta={"rotation": "login", "session_expires_at": expires.isoformat(), "session_fingerprint": "abc"})
        page = text(viewer_client.get(f"/connections/{c.name}/"))
        assert f"Access token expires {expires:%Y-%m-%d %H:%M:%S} (in 59 minutes)" in page
        assert expires.isoformat() not in page and ".926256" not in page
        assert "a.m." not in page and "p.m." not in page

    @pytest.mark.parametrize("provider, secret, label, key", [
        ("cleanlist", {"token": "t"}, "Test service", "test_service"),
        ("clever", {"token": "t"}, "Test path", "test_path")])
    def test_options_are_named_as_the_form_names_them(self, viewer_client, provider, secret, label, key):
        """The Connection card listed options by key: "test_service pub_echo"."""
        c = factories.connection(provider, name=f"opt-{provider}", secret=secret)
        html = viewer_client.get(f"/connections/{c.name}/").content.decode()
        assert f"<dt>{label}</dt>" in html and f"<dt>{key}</dt>" not in html


class TestStalePage:
    """Found clicking through `make run`: after signing in again in another tab, Test in the old tab
    said "You do not have permission for that action (403). Ask an admin if you need it." (a stale
    CSRF token), and a plain form got Django's technical "CSRF verification failed" page."""

    def _client(self):
        from django.test import Client

        client = Client(enforce_csrf_checks=True)
        client.force_login(factories.user("operator"))
        return client

    def test_a_button_says_reload_the_page(self):
        c = factories.connection("cleanlist", name="stale-tab", secret={"token": "t"})
        response = self._client().post(f"/connections/{c.name}/test/", {"csrfmiddlewaretoken": "stale" * 8},
                                       headers=HX)
        assert response.status_code == 403 and response["Content-Type"].startswith("text/plain")
        said = response.content.decode()
        assert "This page is out of date" in said and "Reload the page, then try again." in said
        assert "Ask an admin" not in said

    def test_a_form_gets_switchboards_page(self):
        response = self._client().post("/users/new/", {"username": "x", "role": "viewer"})
        assert response.status_code == 403
        page = text(response)
        assert "This page is out of date" in page and "Nothing was changed." in page and "CSRF" not in page
