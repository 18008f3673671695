"""The Rotate panel, its progress polling, the verified replacement form and the history."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.urls import reverse

from connections.models import AuditEvent, RotationAttempt, RotationState
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.vault import active_credential
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db]
HX = {"HX-Request": "true"}


def cleanlist(vendors):
    return factories.connection("cleanlist", sandbox=vendors,
                                options={"test_service": "email_verify", "test_body": '{"email": "ops@example.com"}'})


def run_inline(connection_id, **kwargs):
    """The rotate task, run in this process instead of a worker."""
    from connections.rotation.jobs import run_rotation

    return run_rotation(connection_id=connection_id, **kwargs)


class TestPermissions:
    def test_viewer_cannot_rotate(self, viewer_client, vendors):
        connection = cleanlist(vendors)
        for route in ("connection_rotate", "connection_replace"):
            response = viewer_client.post(reverse(route, args=[connection.name]), {"token": "x"}, headers=HX)
            assert response.status_code == 403
        assert not RotationAttempt.objects.exists()
        assert vendors.stats("cleanlist")["refresh_calls"] == []

    def test_viewer_sees_the_history_but_no_rotate_button(self, viewer_client, vendors):
        connection = cleanlist(vendors)
        page = viewer_client.get(reverse("connection_detail", args=[connection.name])).content.decode()
        assert "Rotation history" in page and "Rotate now" not in page
        assert "needs the operator role" in page


class TestRefreshFromThePage:
    def test_confirmation_states_what_will_happen(self, operator_client, vendors):
        connection = cleanlist(vendors)
        page = operator_client.get(reverse("connection_detail", args=[connection.name])).content.decode()
        assert "Rotate now" in page
        assert "The current Cleanlist token stops working immediately" in page
        assert 'data-confirm="Rotate ' in page

    def test_rotate_enqueues_polls_and_shows_the_result(self, operator_client, operator, vendors,
                                                        django_capture_on_commit_callbacks):
        connection = cleanlist(vendors)
        old = active_credential(connection)
        with mock.patch("connections.tasks.rotate_credentials.delay") as delay, \
                django_capture_on_commit_callbacks(execute=True):
            response = operator_client.post(reverse("connection_rotate", args=[connection.name]), headers=HX)
        assert response.status_code == 200
        html = response.content.decode()
        assert 'data-poll="1"' in html and "waiting for a worker" in html
        (args, kwargs), = [tuple(c) for c in delay.call_args_list]
        assert args == (connection.pk,) and kwargs["user_id"] == operator.pk
        assert not any(DEMO_CREDENTIALS["cleanlist"]["token"] in str(v) for v in kwargs.values())
        attempt_id = kwargs["attempt_id"]
        status_url = reverse("connection_rotation_status", args=[connection.name, attempt_id])
        assert 'data-poll="1"' in operator_client.get(status_url, headers=HX).content.decode()

        run_inline(args[0], **kwargs)  # the worker
        finished = operator_client.get(status_url, headers=HX)
        html = finished.content.decode()
        assert "Rotated." in html and 'data-poll' not in html.split('id="rotation-history"')[0]
        # Said once: the panel read "Rotated. Rotated: Cleanlist issued a new secret ..." (make run).
        said = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.split('id="rotation-history"')[0]))
        assert "Rotated. Cleanlist issued a new secret, now active as v2" in said and "Rotated:" not in said
        # The credential card and versions on the page reload themselves on this event.
        assert finished["HX-Trigger"] == "credential-changed"
        new = active_credential(connection)
        card = operator_client.get(reverse("connection_detail", args=[connection.name]) + "?part=credential-card",
                                   headers=HX).content.decode()
        assert card.lstrip().startswith('<section class="card" id="credential-card"')
        assert new.fingerprint in card and f"v{new.version}" in card and old.fingerprint not in card
        assert new.fingerprint in html and old.fingerprint in html  # before -> after, and the history (oob)
        attempt = RotationAttempt.objects.get(pk=attempt_id)
        assert attempt.state == RotationState.SUCCEEDED and attempt.actor_id == operator.pk
        assert AuditEvent.objects.filter(action="rotation.succeeded", actor=operator).exists()

    def test_busy_is_reported(self, operator_client, vendors, django_capture_on_commit_callbacks):
        from connections.rotation import claim_connection

        connection = cleanlist(vendors)
        claim_connection(connection.pk)
        with mock.patch("connections.tasks.rotate_credentials.delay") as delay, \
                django_capture_on_commit_callbacks(execute=True):
            operator_client.post(reverse("connection_rotate", args=[connection.name]), headers=HX)
        kwargs = delay.call_args.kwargs
        run_inline(delay.call_args.args[0], **kwargs)
        html = operator_client.get(reverse("connection_rotation_status", args=[connection.name, kwargs["attempt_id"]]),
                                   headers=HX).content.decode()
        assert "Already rotating" in html

    def test_lost_answer_shows_what_to_do(self, operator_client, vendors, django_capture_on_commit_callbacks):
        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "drop_after_refresh", count=1)
        with mock.patch("connections.tasks.rotate_credentials.delay") as delay, \
                django_capture_on_commit_callbacks(execute=True):
            operator_client.post(reverse("connection_rotate", args=[connection.name]), headers=HX)
        run_inline(delay.call_args.args[0], **delay.call_args.kwargs)
        page = operator_client.get(reverse("connection_detail", args=[connection.name])).content.decode()
        assert "ask Cleanlist support" in page and "Needs attention" in page


class TestVerifiedReplacement:
    def test_wrong_secret_is_refused_with_the_vendors_answer(self, operator_client, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        old = active_credential(connection)
        response = operator_client.post(reverse("connection_replace", args=[connection.name]),
                                        {"token": "definitely-wrong-token"}, headers=HX)
        assert response.status_code == 422
        html = response.content.decode()
        assert "Not rotated." in html and "HTTP 401" in html and "still active" in html
        assert "definitely-wrong-token" not in html
        assert active_credential(connection).pk == old.pk

    def test_right_secret_replaces(self, operator_client, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        vendors.vendor("clever").add_credentials({"token": "fresh-district-token"})
        response = operator_client.post(reverse("connection_replace", args=[connection.name]),
                                        {"token": "fresh-district-token"}, headers=HX)
        assert response.status_code == 200
        assert "Rotated." in response.content.decode()
        assert response["HX-Trigger"] == "credential-changed"
        assert active_credential(connection).reveal() == {"token": "fresh-district-token"}
        assert "fresh-district-token" not in response.content.decode()

    def test_staged_vendor_shows_the_form_not_the_refresh(self, operator_client, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        page = operator_client.get(reverse("connection_detail", args=[connection.name])).content.decode()
        assert "Verify and replace" in page and "Rotate now" not in page


class TestSessionsFromThePage:
    """Issue 11 items 8 and 13: a TeleTracker bearer-session connection starts its session from
    the page, and the card's session fingerprint is the one the history shows."""

    def session_connection(self, vendors):
        secret = {**DEMO_CREDENTIALS["teletracker"], "auth_scheme": "bearer_session"}
        return factories.connection("teletracker", sandbox=vendors, secret=secret)

    def test_start_session_then_rotate(self, operator_client, vendors, django_capture_on_commit_callbacks):
        connection = self.session_connection(vendors)
        detail = reverse("connection_detail", args=[connection.name])
        page = operator_client.get(detail).content.decode()
        assert "Start session" in page and "none yet" in page
        for button, step in (("Start session", "session_started"), ("Rotate now", "verified")):
            assert f">{button}</button>" in operator_client.get(detail).content.decode()
            with mock.patch("connections.tasks.rotate_credentials.delay") as delay, \
                    django_capture_on_commit_callbacks(execute=True):
                operator_client.post(reverse("connection_rotate", args=[connection.name]), headers=HX)
            run_inline(delay.call_args.args[0], **delay.call_args.kwargs)
            attempt = RotationAttempt.objects.get(pk=delay.call_args.kwargs["attempt_id"])
            assert attempt.state == RotationState.SUCCEEDED and attempt.step == step, attempt.error
            card = operator_client.get(detail + "?part=credential-card", headers=HX).content.decode()
            history = operator_client.get(reverse("connection_rotations", args=[connection.name]),
                                          headers=HX).content.decode()
            # The card shows the session fingerprint that the history's "after" column shows.
            assert attempt.new_fingerprint in card and attempt.new_fingerprint in history
        page = operator_client.get(detail).content.decode()
        assert "Rotate now" in page and "Start session" not in page
        assert active_credential(connection).reveal()["password"] not in page

    def test_pages_do_not_decrypt_to_decide(self, operator_client, vendors):
        connection = self.session_connection(vendors)
        with mock.patch("connections.models.Credential.reveal", side_effect=AssertionError("decrypted")), \
                mock.patch("connections.crypto.Sealed.reveal", side_effect=AssertionError("decrypted")):
            page = operator_client.get(reverse("connection_detail", args=[connection.name])).content.decode()
        assert "Start session" in page


class TestRejectedSecret:
    def test_a_pasted_secret_the_vendor_refused_is_listed_as_rejected(self, operator_client, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        operator_client.post(reverse("connection_replace", args=[connection.name]), {"token": "wrong"}, headers=HX)
        versions = operator_client.get(reverse("connection_detail", args=[connection.name])
                                       + "?part=credential-versions", headers=HX).content.decode()
        assert "badge-cred-rejected" in versions and ">Rejected<" in versions
        assert "Retired" not in versions
