"""Rotation edges found by vendor doubles written apart from the sandbox (issue 13, items 1-7).

Each test runs against the sandbox; where the double behaved differently from the sandbox's
defaults (Cleanlist answering a rescinded token with 403, TeleTracker keeping the old access
token alive after a refresh), a sandbox setting reproduces it.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import pytest
from django.utils import timezone

from connections.cli.rotate import rotation_exit_code
from connections.models import CredentialState, Health, RequestLog, RotationAttempt, RotationState
from connections.outbound.client import RequestSpec, send
from connections.rotation import rotate, staged_replace
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from connections.services.vault import active_credential
from tests import factories
from tests.cli import run_cli

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("empty_spool")]
ACTOR = Actor(label="tester", via="cli")
VERIFY = RequestSpec("POST", "/email_verify/", json={"email": "ops@example.com"})


def cleanlist(vendors, test_service="email_verify"):
    options = {"test_service": test_service}
    if test_service == "email_verify":
        options["test_body"] = '{"email": "ops@example.com"}'
    return factories.connection("cleanlist", sandbox=vendors, options=options)


def session_connection(vendors, *, log_in=True):
    secret = {**DEMO_CREDENTIALS["teletracker"], "auth_scheme": "bearer_session"}
    connection = factories.connection("teletracker", sandbox=vendors, secret=secret)
    if log_in:
        assert send(connection, RequestSpec("GET", "/accounts"), actor=ACTOR).ok  # logs in
    return connection


def session_of(connection) -> dict | None:
    return active_credential(connection).reveal().get("session")


class TestInFlightCallsDuringACleanlistRotation:
    """13.1: a call that read the old token before the rotation committed is retried once with
    the new one, whether Cleanlist answers the rescinded token 401 or 403."""

    @pytest.mark.parametrize("status", [401, 403])
    def test_a_call_with_the_rescinded_token_retries_once_with_the_new_one(self, vendors, tune, status):
        tune("cleanlist", rescinded_status=status)
        connection = cleanlist(vendors)
        old = active_credential(connection)
        from connections.outbound import client

        real_active = client._active_credential
        reads = iter([old])  # the first read happens "before" the rotation committed

        def stale_then_fresh(conn):
            return next(reads, None) or real_active(conn)

        assert rotate(connection=connection, actor=ACTOR).state == RotationState.SUCCEEDED
        with mock.patch("connections.outbound.client._active_credential", side_effect=stale_then_fresh):
            result = send(connection, VERIFY, actor=ACTOR)
        assert result.ok, result.error_message
        assert result.attempts == 2
        assert result.credential_id == active_credential(connection).pk

    def test_a_403_for_a_service_the_token_may_not_use_is_not_retried(self, vendors, tune):
        tune("cleanlist", rescinded_status=403)
        connection = cleanlist(vendors)
        result = send(connection, RequestSpec("POST", "/phone_verify/", json={"phone": "+1555"}), actor=ACTOR)
        assert result.status_code == 403 and result.attempts == 1


class TestTeleTrackerLostRefreshAnswer:
    """13.2: after a lost refresh answer the old access token may still work although the refresh
    token was consumed: log in again (a new session) instead of trusting the access token."""

    def test_lost_answer_starts_a_new_session_and_the_next_rotation_works(self, vendors, tune):
        tune("teletracker", refresh_rescinds_session=False)  # the old access token stays valid
        connection = session_connection(vendors)
        before = session_of(connection)
        vendors.set_fault("teletracker", "drop_after_refresh", count=1)
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.RECOVERED, outcome.message
        assert "logged in again" in outcome.message
        after = session_of(connection)
        assert after is not None and after["refresh_token"] != before["refresh_token"]
        # The next rotation uses a refresh token the vendor still honours.
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.SUCCEEDED, outcome.message
        calls = vendors.stats("teletracker")["refresh_calls"]
        assert [c["token_was_current"] for c in calls] == [True, True]  # never a consumed one
        connection.refresh_from_db()
        assert connection.health != Health.NEEDS_ATTENTION

    def test_a_refused_refresh_token_logs_in_again_instead_of_failing_forever(self, vendors, tune):
        tune("teletracker", refresh_rescinds_session=False)
        connection = session_connection(vendors)
        vendors.vendor("teletracker").refresh_tokens.rescind(session_of(connection)["refresh_token"])
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.RECOVERED, outcome.message
        assert rotate(connection=connection, actor=ACTOR).state == RotationState.SUCCEEDED

    def test_lost_answer_and_a_refused_login_needs_attention_with_advice(self, vendors, tune):
        tune("teletracker", refresh_rescinds_session=False)
        connection = session_connection(vendors)
        vendors.set_fault("teletracker", "drop_after_refresh", count=1)
        demo = DEMO_CREDENTIALS["teletracker"]
        vendors.vendor("teletracker").add_credentials(
            {"username": demo["username"], "password": "changed-at-the-vendor", "account_id": demo["account_id"]})
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.OUTCOME_UNKNOWN and rotation_exit_code(outcome) == 3
        connection.refresh_from_db()
        assert connection.health == Health.NEEDS_ATTENTION
        assert "user name and password" in connection.health_reason
        assert len(vendors.stats("teletracker")["refresh_calls"]) == 1  # never refreshed blindly


class TestGarbledRefreshAnswer:
    """13.3: a 2xx whose body does not parse is an unknown outcome: probe, never "unchanged"."""

    def test_garbled_answer_after_the_vendor_rotated_needs_attention(self, vendors):
        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "garble_after_refresh", count=1)
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.OUTCOME_UNKNOWN, outcome.message
        assert "unchanged and still active" not in outcome.message
        connection.refresh_from_db()
        assert connection.health == Health.NEEDS_ATTENTION
        assert len(vendors.stats("cleanlist")["refresh_calls"]) == 1
        # An unreadable refresh answer may hold a token the redactor cannot find: not logged.
        row = RequestLog.objects.get(connection=connection, operation="refresh")
        assert "not shown" in row.response_excerpt and '"ok"' not in row.response_excerpt

    def test_garbled_answer_without_a_rotation_is_probed_and_fails_harmlessly(self, vendors):
        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "malformed_json", count=1)  # answered by the fault: nothing rotated
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.FAILED
        assert "did not rotate" in outcome.message and "still accepted" in outcome.message


class TestNoRefreshWithASecretThatMayBeRescinded:
    def test_rotate_after_a_lost_answer_refuses_without_calling_the_vendor(self, vendors):
        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "drop_after_refresh", count=1)
        first = rotate(connection=connection, actor=ACTOR)
        assert first.state == RotationState.OUTCOME_UNKNOWN
        again = rotate(connection=connection, actor=ACTOR)
        assert rotation_exit_code(again) == 3 and "Paste the secret" in again.message
        stats = vendors.stats("cleanlist")
        assert len(stats["refresh_calls"]) == 1 and stats["rescinded_token_uses"] == 1  # the probe only
        vendors.vendor("cleanlist").add_credentials({"token": "support-issued-token"})
        assert staged_replace(connection=connection, secret={"token": "support-issued-token"},
                              actor=ACTOR).state == RotationState.SUCCEEDED
        assert rotate(connection=connection, actor=ACTOR).state == RotationState.SUCCEEDED


class TestARefreshThatLandsAfterItsTimeout:
    """Found by the model-based test: the vendor still processes a refresh after the client gave up,
    so an immediate "still accepted" probe proves nothing; Switchboard probes again later."""

    def test_late_refresh_is_caught_by_the_recheck(self, vendors, settings):
        from datetime import timedelta

        from connections.rotation import reconcile_rotations
        from connections.rotation.late import late_grace

        settings.OUTBOUND_READ_TIMEOUT = 0.5
        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "slow", count=1, seconds=1.0)
        first = rotate(connection=connection, actor=ACTOR)
        assert first.state == RotationState.FAILED and "probes again" in first.message
        again = rotate(connection=connection, actor=ACTOR)  # within the grace: nothing is sent
        assert again.state == "busy" and "may still land" in again.message
        deadline = time.monotonic() + 5
        while vendors.stats("cleanlist")["in_flight_now"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(vendors.stats("cleanlist")["refresh_calls"]) == 1  # it landed, late
        reconcile_rotations(now=timezone.now() + late_grace() + timedelta(seconds=1))
        connection.refresh_from_db()
        assert connection.health == Health.NEEDS_ATTENTION and "ask Cleanlist support" in connection.health_reason
        assert RotationAttempt.objects.get(pk=first.attempt_id).state == RotationState.OUTCOME_UNKNOWN
        assert all(c["token_was_current"] for c in vendors.stats("cleanlist")["refresh_calls"])

    def test_a_timeout_the_vendor_never_acted_on_settles_as_not_rotated(self, vendors, settings):
        from datetime import timedelta

        from connections.rotation import reconcile_rotations
        from connections.rotation.late import late_grace

        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "reset", count=1)  # dropped before the vendor acted
        first = rotate(connection=connection, actor=ACTOR)
        assert first.state == RotationState.FAILED
        reconcile_rotations(now=timezone.now() + late_grace() + timedelta(seconds=1))
        assert RotationAttempt.objects.get(pk=first.attempt_id).step == "probed_alive"
        assert rotate(connection=connection, actor=ACTOR).state == RotationState.SUCCEEDED


class TestProbeVerdicts:
    def test_a_garbled_answer_to_the_probe_is_not_proof_the_secret_works(self, vendors):
        """Found by the model-based test: a garbled 200 to the probe was read as "still accepted"."""
        from connections.rotation.probe import probe_old

        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "malformed_json", count=1)
        probe = probe_old(connection=connection, credential=active_credential(connection), actor=ACTOR)
        assert probe.verdict == "inconclusive", probe.detail
        assert probe_old(connection=connection, credential=active_credential(connection),
                         actor=ACTOR).verdict == "alive"


class TestCleanlistLostAnswerWording:
    def test_no_retention_figure_cleanlist_does_not_document(self, vendors):
        """13.4: "about 14 days" is TeleTracker's figure."""
        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "drop_after_refresh", count=1)
        rotate(connection=connection, actor=ACTOR)
        connection.refresh_from_db()
        assert "ask Cleanlist support" in connection.health_reason
        assert "keep request data" not in connection.health_reason
        assert "about" not in connection.health_reason


class TestPastedReplacementAfterALostRefresh:
    def test_the_token_the_vendor_rescinded_is_labelled_rescinded(self, vendors):
        """13.5: not "retired" (which says it may still work)."""
        connection = cleanlist(vendors)
        old = active_credential(connection)
        vendors.set_fault("cleanlist", "drop_after_refresh", count=1)
        assert rotate(connection=connection, actor=ACTOR).state == RotationState.OUTCOME_UNKNOWN
        vendors.vendor("cleanlist").add_credentials({"token": "support-issued-token"})
        outcome = staged_replace(connection=connection, secret={"token": "support-issued-token"}, actor=ACTOR)
        assert outcome.state == RotationState.SUCCEEDED, outcome.message
        old.refresh_from_db()
        assert old.state == CredentialState.RESCINDED
        assert "rescinded" in outcome.message


class TestRotateStartsASession:
    """13.6: a bearer-session connection without a session yet: `rotate` logs in."""

    def test_rotate_without_a_session_logs_in(self, vendors):
        connection = session_connection(vendors, log_in=False)
        result = run_cli("rotate", connection.name)
        assert result.code == 0, result.out + result.err
        assert session_of(connection) is not None
        attempt = RotationAttempt.objects.get(connection=connection)
        assert attempt.state == RotationState.SUCCEEDED and attempt.new_fingerprint
        assert vendors.stats("teletracker")["refresh_calls"] == []

    def test_json_errors_are_json_on_stdout(self, vendors):
        result = run_cli("rotate", "no-such-connection", "--json")
        assert result.code == 2
        error = result.json()["error"]
        assert error["code"] == "bad_input" and "no-such-connection" in error["message"]
        connection = factories.connection("clever", sandbox=vendors)
        result = run_cli("rotate", connection.name, "--json")  # empty stdin
        assert result.code == 2 and "standard input" in result.json()["error"]["message"]


class TestOperationDeadline:
    """13.7: a stalled vendor cannot make one operation take retries x timeout."""

    def test_a_stalled_vendor_is_given_up_at_the_deadline(self, vendors, settings):
        settings.OUTBOUND_READ_TIMEOUT = 1.0
        settings.OUTBOUND_DEADLINE = 2.5
        connection = factories.connection("clever", sandbox=vendors)
        vendors.set_fault("clever", "slow", seconds=3)
        started = time.monotonic()
        result = run_cli("test", connection.name, "--json")
        took = time.monotonic() - started
        vendors.clear_faults("clever")
        assert result.code == 1
        assert took < 3.5, f"the test took {took:.1f} s with a 2.5 s deadline"
        assert "deadline" in result.json()["error"]["message"]

    def test_repeat_documents_its_maximum(self):
        from connections.cli import call
        from connections.services.testing import MAX_REPEAT

        parser = argparse.ArgumentParser()
        call.add_arguments(parser)
        assert f"at most {MAX_REPEAT}" in " ".join(parser.format_help().split())

