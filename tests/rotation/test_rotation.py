"""Rotation (connections/rotation/): rescind-on-refresh and staged replacement, against the sandbox.

Concurrency and killed workers run real processes: tests/rotation/test_rotation_processes.py.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from connections.cli.rotate import rotation_exit_code
from connections.models import AuditEvent, Connection, CredentialState, Health, RotationAttempt, RotationState
from connections.outbound.client import RequestSpec, send
from connections.rotation import reconcile_rotations, rotate, spool, staged_replace
from connections.rotation.core import claim_connection, lease_seconds
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from connections.services.vault import active_credential
from tests import factories
from tests.cli import run_cli

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("empty_spool")]
ACTOR = Actor(label="tester", via="cli")
REPEAT = 3  # each fault is run this many times (fresh sandbox and connection each time)


def cleanlist(vendors, test_service="email_verify"):
    options = {"test_service": test_service}
    if test_service == "email_verify":
        options["test_body"] = '{"email": "ops@example.com"}'
    return factories.connection("cleanlist", sandbox=vendors, options=options)


def live_token(vendors, token) -> bool:
    return vendors.vendor("cleanlist").tokens.get(token) is not None


def works(connection) -> bool:
    """An authorised Cleanlist call with the active credential succeeds."""
    result = send(connection, RequestSpec("POST", "/email_verify/", json={"email": "ops@example.com"}), actor=ACTOR)
    return result.ok


@pytest.mark.django_db
class TestCleanlistRefresh:
    def test_rotates_and_rescinds_the_old_token(self, vendors):
        connection = cleanlist(vendors)
        old = active_credential(connection)
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.SUCCEEDED, outcome.message
        assert rotation_exit_code(outcome) == 0
        new = active_credential(connection)
        assert new.pk != old.pk and new.source == "refresh"
        old.refresh_from_db()
        assert old.state == CredentialState.RESCINDED
        assert live_token(vendors, new.reveal()["token"])
        assert not live_token(vendors, old.reveal()["token"])
        assert works(connection)
        stats = vendors.stats("cleanlist")
        assert [c["token_was_current"] for c in stats["refresh_calls"]] == [True]
        attempt = RotationAttempt.objects.get(pk=outcome.attempt_id)
        assert attempt.old_fingerprint == old.fingerprint and attempt.new_fingerprint == new.fingerprint
        assert attempt.vendor_request_id.startswith("req_")
        assert outcome.verified is True
        connection.refresh_from_db()
        assert connection.rotation_claim is None
        assert spool.pending() == []

    def test_every_rotation_is_audited(self, vendors):
        connection = cleanlist(vendors)
        outcome = rotate(connection=connection, actor=ACTOR)
        actions = list(AuditEvent.objects.filter(connection=connection, details__attempt=outcome.attempt_id)
                       .values_list("action", flat=True))
        assert sorted(actions) == ["rotation.start", "rotation.succeeded"]

    @pytest.mark.parametrize("run", range(REPEAT))
    def test_vendor_500_leaves_the_old_token_active_and_working(self, vendors, run):
        connection = cleanlist(vendors)
        old = active_credential(connection)
        vendors.set_fault("cleanlist", "http500_empty", count=1)
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.FAILED
        assert rotation_exit_code(outcome) == 1
        assert "still active" in outcome.message
        assert active_credential(connection).pk == old.pk
        assert works(connection)
        connection.refresh_from_db()
        assert connection.health != Health.NEEDS_ATTENTION and connection.rotation_claim is None

    @pytest.mark.parametrize("run", range(REPEAT))
    def test_dropped_answer_after_rotating_needs_attention_without_retry(self, vendors, run):
        connection = cleanlist(vendors)
        old = active_credential(connection)
        vendors.set_fault("cleanlist", "drop_after_refresh", count=1)
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.OUTCOME_UNKNOWN
        assert rotation_exit_code(outcome) == 3
        # Exactly one refresh: never retried blindly.
        assert len(vendors.stats("cleanlist")["refresh_calls"]) == 1
        connection.refresh_from_db()
        assert connection.health == Health.NEEDS_ATTENTION
        reason = connection.health_reason
        assert "ask Cleanlist support" in reason and "UTC" in reason and "req_" in reason
        assert active_credential(connection).pk == old.pk  # nothing invented
        assert connection.rotation_claim is None

    def test_dropped_answer_without_a_probe_says_it_cannot_tell(self, vendors):
        connection = cleanlist(vendors, test_service="pub_echo")
        vendors.set_fault("cleanlist", "drop_after_refresh", count=1)
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.OUTCOME_UNKNOWN
        connection.refresh_from_db()
        assert connection.health == Health.NEEDS_ATTENTION
        assert "cannot tell" in connection.health_reason and "pub_echo" in connection.health_reason

    @pytest.mark.parametrize("run", range(REPEAT))
    def test_dropped_connection_before_the_vendor_acted_fails_harmlessly(self, vendors, run):
        connection = cleanlist(vendors)
        old = active_credential(connection)
        vendors.set_fault("cleanlist", "reset", count=1)  # RST before the twin handles it
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.FAILED, outcome.message
        assert "did not rotate" in outcome.message
        assert active_credential(connection).pk == old.pk
        assert works(connection)

    @pytest.mark.parametrize("run", range(REPEAT))
    def test_database_failure_after_the_answer_spools_and_recover_restores(self, vendors, run):
        connection = cleanlist(vendors)
        old = active_credential(connection)
        with mock.patch("connections.rotation.refresh.credential_activate", side_effect=RuntimeError("db down")):
            outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == "spooled", outcome.message
        assert rotation_exit_code(outcome) == 3
        assert "connections recover" in outcome.message
        connection.refresh_from_db()
        assert connection.health == Health.NEEDS_ATTENTION and "connections recover" in connection.health_reason
        files = spool.pending()
        assert len(files) == 1
        assert b"new_token" not in files[0].read_bytes()  # encrypted
        assert active_credential(connection).pk == old.pk
        assert not works(connection)  # the vendor rescinded the old token
        result = run_cli("recover", "--json")
        assert result.code == 0, result.err
        (item,) = result.json()["recovered"]
        assert item["status"] == "imported"
        assert item["test"]["ok"] is True
        new = active_credential(connection)
        assert new.source == "recovery" and live_token(vendors, new.reveal()["token"])
        assert works(connection)
        assert RotationAttempt.objects.get(pk=outcome.attempt_id).state == RotationState.RECOVERED
        assert spool.pending() == []
        connection.refresh_from_db()
        assert connection.health != Health.NEEDS_ATTENTION

    def test_busy_while_another_rotation_holds_the_claim(self, vendors):
        connection = cleanlist(vendors)
        assert claim_connection(connection.pk) is not None
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == "busy" and rotation_exit_code(outcome) == 1
        assert vendors.stats("cleanlist")["refresh_calls"] == []

    def test_refused_refresh_is_a_failure_with_the_vendors_words(self, vendors):
        connection = factories.connection("cleanlist", sandbox=vendors, secret={"token": "not-a-live-token"})
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.FAILED
        assert "Invalid or rescinded token" in outcome.message
        assert outcome.error["status"] == 401


@pytest.mark.django_db
class TestReconciler:
    def expire(self):
        return timezone.now() + timedelta(seconds=lease_seconds() + 5)

    def test_stale_claim_without_attempt_is_released(self, vendors):
        connection = cleanlist(vendors)
        claim_connection(connection.pk)
        reconcile_rotations(now=self.expire())
        connection.refresh_from_db()
        assert connection.rotation_claim is None

    def test_started_attempt_whose_vendor_did_not_rotate_fails(self, vendors):
        connection = cleanlist(vendors)
        old = active_credential(connection)
        claim_connection(connection.pk)
        attempt = RotationAttempt.objects.create(connection=connection, old_credential=old,
                                                 old_fingerprint=old.fingerprint,
                                                 lease_until=timezone.now())
        reconcile_rotations(now=self.expire())
        attempt.refresh_from_db()
        connection.refresh_from_db()
        assert attempt.state == RotationState.FAILED and "did not rotate" in attempt.error
        assert connection.rotation_claim is None
        assert active_credential(connection).pk == old.pk

    def test_started_attempt_whose_token_was_rescinded_needs_attention(self, vendors):
        connection = cleanlist(vendors)
        old = active_credential(connection)
        # The vendor rotated, the worker died before it stored anything.
        send(connection, RequestSpec("POST", "/_refresh/", json={}), actor=ACTOR, operation="refresh", retry=False)
        attempt = RotationAttempt.objects.create(connection=connection, old_credential=old,
                                                 old_fingerprint=old.fingerprint, lease_until=timezone.now())
        reconcile_rotations(now=self.expire())
        attempt.refresh_from_db()
        connection.refresh_from_db()
        assert attempt.state == RotationState.OUTCOME_UNKNOWN
        assert connection.health == Health.NEEDS_ATTENTION
        assert not RotationAttempt.objects.filter(state=RotationState.STARTED).exists()

    def test_reconciler_imports_the_spool(self, vendors):
        connection = cleanlist(vendors)
        with mock.patch("connections.rotation.refresh.credential_activate", side_effect=RuntimeError("db down")):
            rotate(connection=connection, actor=ACTOR)
        reconcile_rotations()
        assert spool.pending() == []
        assert works(Connection.objects.get(pk=connection.pk))


@pytest.mark.django_db
class TestTeleTrackerSessions:
    def session_connection(self, vendors):
        secret = {**DEMO_CREDENTIALS["teletracker"], "auth_scheme": "bearer_session"}
        connection = factories.connection("teletracker", sandbox=vendors, secret=secret)
        result = send(connection, RequestSpec("GET", "/accounts"), actor=ACTOR)  # logs in
        assert result.ok, result.error_message
        return connection

    def test_refresh_rotates_the_session_in_place(self, vendors):
        connection = self.session_connection(vendors)
        cred = active_credential(connection)
        before = cred.reveal()["session"]
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.SUCCEEDED, outcome.message
        cred.refresh_from_db()
        after = cred.reveal()["session"]
        assert after["refresh_token"] != before["refresh_token"]
        assert cred.state == CredentialState.ACTIVE and active_credential(connection).pk == cred.pk
        assert outcome.old_fingerprint != outcome.new_fingerprint
        assert vendors.stats("teletracker")["refresh_calls"][-1]["token_was_current"] is True
        connection.refresh_from_db()
        assert connection.next_refresh_at is not None
        assert connection.next_refresh_at < timezone.now() + timedelta(seconds=3600)
        assert send(connection, RequestSpec("GET", "/accounts"), actor=ACTOR).ok

    def test_lost_refresh_answer_logs_in_again(self, vendors):
        connection = self.session_connection(vendors)
        before = active_credential(connection).reveal()["session"]
        vendors.set_fault("teletracker", "drop_after_refresh", count=1)
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == RotationState.RECOVERED, outcome.message
        assert len(vendors.stats("teletracker")["refresh_calls"]) == 1
        connection.refresh_from_db()
        assert connection.health != Health.NEEDS_ATTENTION
        after = active_credential(connection).reveal()["session"]
        assert after["token"] != before["token"]
        assert send(connection, RequestSpec("GET", "/accounts"), actor=ACTOR).ok

    def test_basic_auth_has_no_refresh(self, vendors):
        connection = factories.connection("teletracker", sandbox=vendors)
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == "unsupported" and rotation_exit_code(outcome) == 2


@pytest.mark.django_db
class TestStagedReplace:
    def test_wrong_secret_leaves_the_old_one_active(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        old = active_credential(connection)
        outcome = staged_replace(connection=connection, secret={"token": "wrong-token"}, actor=ACTOR)
        assert outcome.state == RotationState.FAILED and rotation_exit_code(outcome) == 1
        assert outcome.error["status"] == 401
        assert "did not accept" in outcome.message
        assert active_credential(connection).pk == old.pk
        tried = connection.credentials.get(fingerprint=outcome.new_fingerprint)
        assert tried.state == CredentialState.REJECTED

    def test_right_secret_is_promoted_and_the_old_one_retired(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        old = active_credential(connection)
        vendors.vendor("clever").add_credentials({"token": "a-new-district-token"})
        outcome = staged_replace(connection=connection, secret={"token": "a-new-district-token"}, actor=ACTOR)
        assert outcome.state == RotationState.SUCCEEDED, outcome.message
        new = active_credential(connection)
        assert new.pk != old.pk and new.fingerprint == outcome.new_fingerprint
        old.refresh_from_db()
        assert old.state == CredentialState.RETIRED
        actions = set(AuditEvent.objects.filter(details__attempt=outcome.attempt_id).values_list("action", flat=True))
        assert actions == {"rotation.start", "rotation.succeeded"}

    def test_malformed_secret_is_bad_input(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        result = run_cli("rotate", connection.name, stdin={"nope": 1})
        assert result.code == 2
        assert not RotationAttempt.objects.filter(connection=connection).exists()

    def test_cleanlist_token_pasted_by_an_operator(self, vendors):
        connection = cleanlist(vendors)
        vendors.vendor("cleanlist").add_credentials({"token": "support-issued-token"})
        result = run_cli("rotate", connection.name, "--stdin", "--json", stdin={"token": "support-issued-token"})
        assert result.code == 0, result.out + result.err
        assert active_credential(connection).reveal() == {"token": "support-issued-token"}


@pytest.mark.django_db
class TestCLI:
    def test_rotate_json(self, vendors):
        connection = cleanlist(vendors)
        result = run_cli("rotate", connection.name, "--json")
        assert result.code == 0, result.err
        data = result.json()
        assert data["state"] == "succeeded" and data["new_fingerprint"]
        assert DEMO_CREDENTIALS["cleanlist"]["token"] not in result.out

    def test_rotate_refused_exit_1(self, vendors):
        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "http500_empty", count=1)
        assert run_cli("rotate", connection.name).code == 1

    def test_rotate_lost_exit_3(self, vendors):
        connection = cleanlist(vendors)
        vendors.set_fault("cleanlist", "drop_after_refresh", count=1)
        result = run_cli("rotate", connection.name)
        assert result.code == 3 and "support" in result.err

    def test_recover_empty(self, db):
        result = run_cli("recover")
        assert result.code == 0 and "empty" in result.out


@pytest.mark.django_db
class TestInFlightRetry:
    def test_request_with_the_old_token_retries_once_with_the_new_one(self, vendors):
        """A request that read the old credential before a rotation finished gets 401, then retries
        once with the new active credential (outbound/client.py)."""
        connection = cleanlist(vendors)
        old = active_credential(connection)
        real_active = __import__("connections.outbound.client", fromlist=["_active_credential"])._active_credential
        calls = {"n": 0}

        def stale_first(conn):
            calls["n"] += 1
            return old if calls["n"] == 1 else real_active(conn)

        assert rotate(connection=connection, actor=ACTOR).state == RotationState.SUCCEEDED
        with mock.patch("connections.outbound.client._active_credential", side_effect=stale_first):
            result = send(connection, RequestSpec("POST", "/email_verify/", json={"email": "a@example.com"}),
                          actor=ACTOR)
        assert result.ok and result.attempts == 2
        assert result.credential_id == active_credential(connection).pk

    def test_a_401_for_another_reason_is_not_retried(self, vendors):
        connection = factories.connection("cleanlist", sandbox=vendors, secret={"token": "revoked"})
        result = send(connection, RequestSpec("POST", "/email_verify/", json={"email": "a@example.com"}),
                      actor=ACTOR)
        assert result.status_code == 401 and result.attempts == 1


@pytest.mark.django_db
class TestProactiveRefresh:
    def test_due_after_the_refresh_interval(self, vendors):
        from connections.rotation import connections_due_for_refresh

        connection = cleanlist(vendors)
        Connection.objects.filter(pk=connection.pk).update(refresh_interval=3600)
        assert connection.pk not in connections_due_for_refresh()
        assert connection.pk in connections_due_for_refresh(now=timezone.now() + timedelta(seconds=3601))
        plain = factories.connection("clever", sandbox=vendors)  # no refresh: never due
        assert plain.pk not in connections_due_for_refresh(now=timezone.now() + timedelta(days=30))

    def test_a_session_is_refreshed_before_it_expires(self, vendors):
        from connections.rotation import connections_due_for_refresh

        connection = TestTeleTrackerSessions().session_connection(vendors)
        lifetime = 3600
        assert connection.pk not in connections_due_for_refresh()
        soon = timezone.now() + timedelta(seconds=lifetime - 60)
        assert connection.pk in connections_due_for_refresh(now=soon)

    def test_needs_attention_is_never_refreshed_automatically(self, vendors):
        from connections.rotation import connections_due_for_refresh

        connection = cleanlist(vendors)
        Connection.objects.filter(pk=connection.pk).update(refresh_interval=60, health=Health.NEEDS_ATTENTION)
        assert connection.pk not in connections_due_for_refresh(now=timezone.now() + timedelta(hours=1))

    def test_the_beat_task_queues_due_connections_by_id(self, vendors):
        from connections import tasks

        connection = cleanlist(vendors)
        Connection.objects.filter(pk=connection.pk).update(refresh_interval=60)
        later = timezone.now() + timedelta(seconds=61)
        with mock.patch("connections.rotation.schedule.timezone.now", return_value=later), \
                mock.patch("connections.tasks.rotate_credentials.delay") as delay:
            assert tasks.refresh_due() == [connection.pk]
        delay.assert_called_once_with(connection.pk, actor_label="scheduler", via="schedule")

    def test_periodic_tasks_are_registered(self):
        from connections.scheduling import PERIODIC_TASKS

        assert PERIODIC_TASKS["connections.tasks.reconcile_rotations"][0] <= 60
        assert "connections.tasks.refresh_due" in PERIODIC_TASKS

    def test_a_refused_refresh_is_not_retried_every_tick(self, vendors):
        from connections.rotation import connections_due_for_refresh

        connection = cleanlist(vendors)
        Connection.objects.filter(pk=connection.pk).update(refresh_interval=60)
        vendors.set_fault("cleanlist", "http500_empty", count=1)
        assert rotate(connection=connection, actor=ACTOR).state == RotationState.FAILED
        assert connection.pk not in connections_due_for_refresh(now=timezone.now() + timedelta(seconds=61))
        assert connection.pk in connections_due_for_refresh(now=timezone.now() + timedelta(seconds=301))
