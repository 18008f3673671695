"""Rotation with real processes: concurrency across processes, and workers killed mid-rotation.

Each worker is `python tests/rotation/rotation_worker.py` (the `connections rotate` CLI in a fresh
process) against this test run's PostgreSQL database and the sandbox served by this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection as db
from django.utils import timezone

from connections.models import Connection, CredentialState, RotationAttempt, RotationState
from connections.outbound.client import RequestSpec, send
from connections.rotation import reconcile_rotations, spool
from connections.rotation.core import CRASH_ENV, lease_seconds
from connections.services.audit import Actor
from connections.services.vault import active_credential
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.process, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_spool")]
ROOT = Path(__file__).resolve().parents[2]
ACTOR = Actor(label="tester", via="cli")
REPEAT = 3


def worker_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env.update({
        "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
        "TEST_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db.settings_dict['NAME']}",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def run_workers(name: str, count: int, *, env: dict, lead: float = 4.0, timeout: float = 120) -> list:
    start_at = time.time() + lead
    procs = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "rotation" / "rotation_worker.py"), name, str(start_at)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(count)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        results.append((proc.returncode, out, err))
    return results


def cleanlist(vendors):
    return factories.connection("cleanlist", sandbox=vendors,
                                options={"test_service": "email_verify", "test_body": '{"email": "ops@example.com"}'})


def works(connection) -> bool:
    return send(connection, RequestSpec("POST", "/email_verify/", json={"email": "ops@example.com"}),
                actor=ACTOR).ok


def the_live_token(vendors) -> str:
    live = list(vendors.vendor("cleanlist").tokens.live)
    assert len(live) == 1, live
    return live[0]


class TestConcurrentRotations:
    def test_twenty_processes_at_once_never_refresh_with_a_rescinded_token(self, vendors):
        connection = cleanlist(vendors)
        results = run_workers(connection.name, 20, env=worker_env())
        codes = [code for code, _, _ in results]
        print("exit codes:", sorted(codes))
        assert set(codes) <= {0, 1}, results
        stats = vendors.stats("cleanlist")
        calls = stats["refresh_calls"]
        # Every refresh used the then-current token, and each one rotated.
        assert calls and all(c["token_was_current"] and c["rotated"] for c in calls), calls
        assert stats["rescinded_token_uses"] == 0
        assert len(calls) == codes.count(0)
        assert RotationAttempt.objects.filter(connection=connection, state=RotationState.SUCCEEDED).count() \
            == len(calls)
        assert not RotationAttempt.objects.filter(state=RotationState.STARTED).exists()
        # Afterwards the stored active token is the one the vendor accepts.
        active = active_credential(connection)
        assert active.reveal()["token"] == the_live_token(vendors)
        assert works(Connection.objects.get(pk=connection.pk))
        connection.refresh_from_db()
        assert connection.rotation_claim is None
        assert connection.credentials.filter(state=CredentialState.RESCINDED).count() == len(calls)


class TestKilledWorkers:
    def expired(self):
        return timezone.now() + timedelta(seconds=lease_seconds() + 5)

    def kill_at(self, vendors, step):
        connection = cleanlist(vendors)
        old = active_credential(connection)
        ((code, out, err),) = run_workers(connection.name, 1, env=worker_env(**{CRASH_ENV: step}), lead=0)
        assert code == -signal.SIGKILL, (code, out, err)
        connection.refresh_from_db()
        assert connection.rotation_claim is not None  # the dead worker's claim is still there
        return connection, old

    @pytest.mark.parametrize("run", range(REPEAT))
    @pytest.mark.parametrize("step", ["claimed", "journaled"])
    def test_killed_between_claim_and_call(self, vendors, step, run):
        connection, old = self.kill_at(vendors, step)
        assert vendors.stats("cleanlist")["refresh_calls"] == []
        reconcile_rotations(now=self.expired())
        connection.refresh_from_db()
        assert connection.rotation_claim is None
        assert not RotationAttempt.objects.filter(state=RotationState.STARTED).exists()
        if step == "journaled":
            attempt = RotationAttempt.objects.get(connection=connection)
            assert attempt.state == RotationState.FAILED and "did not rotate" in attempt.error
        assert active_credential(connection).pk == old.pk
        assert works(connection)

    @pytest.mark.parametrize("run", range(REPEAT))
    @pytest.mark.parametrize("step", ["spooled", "committed"])
    def test_killed_between_call_and_commit_loses_no_token(self, vendors, step, run):
        connection, old = self.kill_at(vendors, step)
        calls = vendors.stats("cleanlist")["refresh_calls"]
        assert len(calls) == 1 and calls[0]["rotated"]
        assert len(spool.pending()) == 1  # the vendor's answer reached the process: it is on disk
        reconcile_rotations(now=self.expired())
        connection.refresh_from_db()
        assert connection.rotation_claim is None
        assert spool.pending() == []
        attempt = RotationAttempt.objects.get(connection=connection)
        assert attempt.state == (RotationState.RECOVERED if step == "spooled" else RotationState.SUCCEEDED)
        active = active_credential(connection)
        assert active.reveal()["token"] == the_live_token(vendors)
        assert connection.credentials.filter(fingerprint=active.fingerprint).count() == 1
        assert works(connection)

    def test_reconciler_in_its_own_process(self, vendors):
        """The reconciler is a beat task: run it as the CLI of another process would (recover + settle)."""
        connection, old = self.kill_at(vendors, "spooled")
        Connection.objects.filter(pk=connection.pk).update(rotation_lease_until=timezone.now() - timedelta(seconds=1))
        RotationAttempt.objects.filter(connection=connection).update(lease_until=timezone.now() - timedelta(seconds=1))
        proc = subprocess.run([sys.executable, "manage.py", "connections", "recover", "--json"], cwd=ROOT,
                              env=worker_env(), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert '"imported"' in proc.stdout
        reconcile_rotations()
        connection.refresh_from_db()
        assert connection.rotation_claim is None
        assert works(connection)
