"""The oauth2 refresh-token grant with real processes against the real authorization server
(tests/authserver: django-oauth-toolkit, rotation + reuse protection, grace period 0).

Workers are `python tests/rotation_worker.py` (the `connections rotate` CLI in a fresh process)."""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from connections.models import Health, RotationAttempt, RotationState
from connections.outbound.client import RequestSpec, send
from connections.rotation import reconcile_rotations, spool
from connections.rotation.core import CRASH_ENV, lease_seconds
from connections.services.audit import Actor
from connections.services.vault import active_credential
from tests import factories
from tests.authserver.client import digest, new_grant
from tests.authserver.fixture import CLIENT_ID, CLIENT_SECRET
from tests.rotation.test_rotation_processes import run_workers, worker_env

pytestmark = [pytest.mark.services, pytest.mark.process, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_spool")]
ACTOR = Actor(label="tester", via="cli")
ME = RequestSpec("GET", "/api/me")


def grant_connection(authserver, **options):
    secret = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
              "refresh_token": new_grant(authserver)["refresh_token"]}
    connection = factories.connection("oauth2", base_url=authserver.url, secret=secret, options={
        "token_url": authserver.token_url, "test_path": "/api/me", **options})
    assert send(connection, ME, actor=ACTOR).ok  # the first access token (one refresh)
    return connection


def refreshes_since(authserver, mark: int) -> list[dict]:
    return [r for r in authserver.token_log()[mark:] if r["grant_type"] == "refresh_token"]


def stored(connection) -> str:
    return active_credential(connection).reveal()["refresh_token"]


class TestConcurrentRotations:
    def test_twenty_processes_refresh_one_at_a_time_and_nothing_is_revoked(self, authserver):
        connection = grant_connection(authserver)
        mark = len(authserver.token_log())
        results = run_workers(connection.name, 20, env=worker_env())
        codes = sorted(code for code, _, _ in results)
        print("exit codes:", codes)
        assert set(codes) <= {0, 1}, results
        refreshes = refreshes_since(authserver, mark)
        assert refreshes and all(r["status"] == 200 and not r["error"] for r in refreshes), refreshes
        assert len(refreshes) == codes.count(0)
        # One at a time at the server: no two refresh requests overlapped.
        spans = sorted((r["start"], r["end"]) for r in refreshes)
        assert all(prev_end <= start for (_, prev_end), (start, _) in zip(spans, spans[1:], strict=False)), spans
        # Each presented the token the previous one was issued: never a rotated one.
        for before, after in zip(refreshes, refreshes[1:], strict=False):
            assert after["presented"] == before["issued"]
        assert refreshes[-1]["issued"] == digest(stored(connection))
        assert not authserver.family_revoked(stored(connection))
        assert not RotationAttempt.objects.filter(state=RotationState.STARTED).exists()
        assert send(connection, ME, actor=ACTOR).data["username"] == "alice"


class TestKilledWorkers:
    def expired(self):
        return timezone.now() + timedelta(seconds=lease_seconds() + 5)

    def kill_at(self, connection, step):
        ((code, out, err),) = run_workers(connection.name, 1, env=worker_env(**{CRASH_ENV: step}), lead=0)
        assert code == -signal.SIGKILL, (code, out, err)

    @pytest.mark.parametrize("step", ["claimed", "journaled", "spooled", "committed"])
    def test_sigkill_at_each_step_loses_and_revokes_no_grant(self, authserver, step):
        connection = grant_connection(authserver, probe="access_token")
        before = stored(connection)
        mark = len(authserver.token_log())
        self.kill_at(connection, step)
        sent = refreshes_since(authserver, mark)
        assert len(sent) == (1 if step in ("spooled", "committed") else 0)
        reconcile_rotations(now=self.expired())
        connection.refresh_from_db()
        assert connection.rotation_claim is None and spool.pending() == []
        assert not RotationAttempt.objects.filter(state=RotationState.STARTED).exists()
        assert connection.health != Health.NEEDS_ATTENTION, connection.health_reason
        if sent:
            assert stored(connection) != before and sent[0]["issued"] == digest(stored(connection))
        else:
            assert stored(connection) == before
        assert not authserver.family_revoked(stored(connection))
        # And it keeps working: refresh again, then call.
        again = run_workers(connection.name, 1, env=worker_env(), lead=0)
        assert again[0][0] == 0, again
        assert send(connection, ME, actor=ACTOR).ok
        presented = [r["presented"] for r in refreshes_since(authserver, mark)]
        assert len(presented) == len(set(presented))  # never the same refresh token twice

    def test_without_a_probe_a_worker_killed_after_journaling_asks_to_reauthorize(self, authserver):
        connection = grant_connection(authserver)
        mark = len(authserver.token_log())
        self.kill_at(connection, "journaled")
        reconcile_rotations(now=self.expired())
        connection.refresh_from_db()
        assert connection.health == Health.NEEDS_ATTENTION
        assert "re-authorize: press Connect" in connection.health_reason
        assert refreshes_since(authserver, mark) == []
        refused = run_workers(connection.name, 1, env=worker_env(), lead=0)
        assert refused[0][0] == 3 and refreshes_since(authserver, mark) == []
