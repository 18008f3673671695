"""The active credential kept in process memory, checked by its generation in Redis
(connections/outbound/credrows.py, connections/credgen.py): no stale credential after any write,
from this process, a thread with its own database connection, or another OS process.

Every test here commits (transaction=True): a write's second bump runs on commit, and the cache
keeps nothing while a write is under way. Each writer test first warms this process's cache with
a call, so it fails when that writer does not move the generation.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from django.db import close_old_connections, transaction
from django.db import connection as db
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from connections import credgen
from connections.crypto import Sealed, encrypt_json
from connections.models import Credential, CredentialState, RequestLog
from connections.outbound import credrows, sessions
from connections.outbound.client import RequestSpec, send
from connections.rotation import rotate, staged_replace
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.archive import connection_archive
from connections.services.audit import Actor
from connections.services.vault import active_credential, credential_activate, credential_add, secret_replace
from tests import factories
from tests.rotation.test_rotation_processes import ROOT, worker_env

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_spool")]
ACTOR = Actor(label="tester", via="cli")
CALLS = {
    "cleverbridge": RequestSpec("GET", "/subscription/getsubscription", params={"SubscriptionId": "S94817263"}),
    "cleanlist": RequestSpec("POST", "/email_verify/", json={"email": "ops@example.com"}),
    "teletracker": RequestSpec("GET", "/accounts"),
}


@pytest.fixture(autouse=True)
def redis_generations():
    if credgen.generations() is None:
        pytest.skip("the cache is not Redis")
    credrows._process_cache.clear()
    yield
    credrows._process_cache.clear()


def call(connection, provider: str):
    return send(connection, CALLS[provider], actor=ACTOR)


def assert_uses_active(connection, provider: str):
    """A call now uses the active credential as the database holds it, and the vendor takes it."""
    result = call(connection, provider)
    active = active_credential(connection)
    assert result.credential_id == (active.pk if active else None)
    assert result.ok, result.error_message
    return result


def warm(connection, provider: str):
    """A call that leaves this process's cache holding the connection's active credential."""
    assert_uses_active(connection, provider)
    assert (db.alias, connection.pk) in credrows._process_cache._entries
    return active_credential(connection)


def in_thread(action):
    """Run `action` in another thread, with its own database connection (another process's write)."""
    out: dict = {}

    def run():
        try:
            out["value"] = action()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            out["error"] = exc
        finally:
            close_old_connections()
            from django.db import connections

            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def cleverbridge(vendors):
    return factories.connection("cleverbridge", sandbox=vendors)


def cleanlist(vendors):
    return factories.connection("cleanlist", sandbox=vendors,
                                options={"test_service": "email_verify", "test_body": '{"email": "ops@example.com"}'})


def teletracker(vendors):
    secret = {**DEMO_CREDENTIALS["teletracker"], "auth_scheme": "bearer_session"}
    return factories.connection("teletracker", sandbox=vendors, secret=secret)


def logins(connection) -> int:
    return RequestLog.objects.filter(connection=connection, operation="login").count()


class TestKept:
    def test_a_kept_credential_costs_no_database_query(self, vendors, django_assert_num_queries):
        connection = cleverbridge(vendors)
        warm(connection, "cleverbridge")
        with django_assert_num_queries(0):
            kept = credrows.current_credential(connection.pk)
        assert kept.pk == active_credential(connection).pk
        assert credrows.revealed(kept) == active_credential(connection).reveal()

    def test_callers_get_their_own_copies(self, vendors):
        connection = cleverbridge(vendors)
        warm(connection, "cleverbridge")
        first = credrows.current_credential(connection.pk)
        first.meta["scribbled"] = True
        credrows.revealed(first)["password"] = "changed"
        second = credrows.current_credential(connection.pk)
        assert "scribbled" not in second.meta and second is not first
        assert credrows.revealed(second) == active_credential(connection).reveal()

    def test_a_secret_decrypted_for_another_ciphertext_is_not_handed_out(self, vendors):
        connection = cleverbridge(vendors)
        warm(connection, "cleverbridge")
        kept = credrows.current_credential(connection.pk)
        kept.secret = Sealed(encrypt_json({"username": "someone", "password": "else"}))
        assert credrows.revealed(kept) is None

    def test_without_redis_every_call_reads_the_database(self, vendors, monkeypatch, django_assert_num_queries):
        connection = cleverbridge(vendors)
        monkeypatch.setattr(credgen, "generations", lambda: None)
        credrows.current_credential(connection.pk)
        with django_assert_num_queries(1):
            credrows.current_credential(connection.pk)
        assert len(credrows._process_cache) == 0

    def test_redis_not_answering_reads_the_database(self, vendors, monkeypatch, django_assert_num_queries):
        connection = cleverbridge(vendors)
        warm(connection, "cleverbridge")

        def down(self, connection_id):
            raise ConnectionError("Redis is down")

        monkeypatch.setattr(credgen.Generations, "read", down)
        with django_assert_num_queries(1):
            read = credrows.current_credential(connection.pk)
        assert read.pk == active_credential(connection).pk

    def test_a_lost_generation_is_a_change(self, vendors):
        """Redis restarted without its data: the key is gone; the next call reads the database,
        even for a write that moved no generation (raw SQL here, standing for a bump lost with it)."""
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        new = Credential.objects.create(connection=connection, version=old.version + 1, secret=old.reveal(),
                                        fingerprint="x", meta=old.meta)
        warm(connection, "cleverbridge")
        with db.cursor() as cursor:  # swap which one is active without a bump (one at a time: at most
            # one active per connection is a unique index, checked row by row in whatever order)
            cursor.execute(f"UPDATE {Credential._meta.db_table} SET state = 'retired' WHERE id = %s", [old.pk])
            cursor.execute(f"UPDATE {Credential._meta.db_table} SET state = 'active' WHERE id = %s", [new.pk])
        assert credrows.current_credential(connection.pk).pk == old.pk  # kept: nothing said it changed
        gens = credgen.generations()
        gens.client.delete(*gens.keys(connection.pk))
        assert credrows.current_credential(connection.pk).pk == new.pk

    def test_a_kept_credential_is_read_again_after_max_age(self, vendors, monkeypatch):
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        with db.cursor() as cursor:  # a write whose bump was lost
            cursor.execute(f"UPDATE {Credential._meta.db_table} SET meta = %s WHERE id = %s",
                           ['{"note": "x"}', old.pk])
        assert "note" not in credrows.current_credential(connection.pk).meta
        monkeypatch.setattr(credrows, "MAX_AGE", 0.0)
        assert credrows.current_credential(connection.pk).meta.get("note") == "x"

    def test_a_write_under_way_elsewhere_is_never_kept(self, vendors):
        """Another process's transaction wrote the credential and has not committed: calls read
        the database (the old row), keep nothing, and see the new row the moment it commits."""
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        written, release = threading.Event(), threading.Event()

        def writer():
            with transaction.atomic():
                Credential.objects.filter(pk=old.pk).update(meta={**old.meta, "note": "new"})
                written.set()
                release.wait(30)

        thread = threading.Thread(target=lambda: (writer(), db.close()))
        thread.start()
        try:
            assert written.wait(30)
            seen = credrows.current_credential(connection.pk)
            assert "note" not in seen.meta
            assert (db.alias, connection.pk) not in credrows._process_cache._entries
        finally:
            release.set()
            thread.join(30)
        assert credrows.current_credential(connection.pk).meta["note"] == "new"

    def test_a_rolled_back_write_leaves_calls_on_the_database(self, vendors, django_assert_num_queries):
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        with pytest.raises(RuntimeError), transaction.atomic():
            Credential.objects.filter(pk=old.pk).update(meta={**old.meta, "note": "rolled back"})
            raise RuntimeError
        with django_assert_num_queries(1):
            assert "note" not in credrows.current_credential(connection.pk).meta
        with django_assert_num_queries(1):
            credrows.current_credential(connection.pk)

    def test_the_cache_is_bounded(self, vendors, monkeypatch):
        monkeypatch.setattr(credrows, "MAX_ENTRIES", 2)
        made = [cleverbridge(vendors) for _ in range(3)]
        for connection in made:
            credrows.current_credential(connection.pk)
        assert len(credrows._process_cache) == 2
        assert (db.alias, made[0].pk) not in credrows._process_cache._entries


class TestWriters:
    """After each writer, in this process, a call uses the new credential."""

    def test_add_and_activate(self, vendors):
        connection = cleverbridge(vendors)
        warm(connection, "cleverbridge")
        with transaction.atomic():
            staged = credential_add(connection=connection, secret=dict(DEMO_CREDENTIALS["cleverbridge"]), actor=ACTOR)
        warm(connection, "cleverbridge")
        credential_activate(credential=staged)
        assert assert_uses_active(connection, "cleverbridge").credential_id == staged.pk

    def test_replace(self, vendors):
        connection = cleverbridge(vendors)
        warm(connection, "cleverbridge")
        new = secret_replace(connection=connection, secret=dict(DEMO_CREDENTIALS["cleverbridge"]), actor=ACTOR)
        assert assert_uses_active(connection, "cleverbridge").credential_id == new.pk

    def test_retire(self, vendors):
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        Credential.objects.filter(pk=old.pk).update(state=CredentialState.RETIRED)
        result = call(connection, "cleverbridge")
        assert result.error_code == "no_credential" and result.status_code is None

    def test_staged_rotation(self, vendors):
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        outcome = staged_replace(connection=connection, secret=dict(DEMO_CREDENTIALS["cleverbridge"]), actor=ACTOR)
        assert outcome.state == "succeeded", outcome.message
        assert assert_uses_active(connection, "cleverbridge").credential_id != old.pk

    def test_refresh_rotation_cleanlist(self, vendors):
        connection = cleanlist(vendors)
        old = warm(connection, "cleanlist")
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == "succeeded", outcome.message
        assert assert_uses_active(connection, "cleanlist").credential_id != old.pk

    def test_refresh_rotation_teletracker_session_in_place(self, vendors):
        connection = teletracker(vendors)
        warm(connection, "teletracker")  # logs in
        warm(connection, "teletracker")  # keeps the row with its session
        outcome = rotate(connection=connection, actor=ACTOR)
        assert outcome.state == "succeeded", outcome.message
        before = logins(connection)
        assert_uses_active(connection, "teletracker")  # the refreshed session, not the rescinded one
        assert logins(connection) == before
        assert vendors.stats("teletracker")["rescinded_token_uses"] == 0

    def test_session_store_and_forget(self, vendors):
        connection = teletracker(vendors)
        assert_uses_active(connection, "teletracker")  # kept without a session, logs in, stores it
        assert logins(connection) == 1
        assert_uses_active(connection, "teletracker")
        assert logins(connection) == 1  # the stored session, not the kept row without one
        sessions.session_forget(credential=active_credential(connection))
        assert_uses_active(connection, "teletracker")
        assert logins(connection) == 2  # the forgotten session is not used again

    def test_archive(self, vendors):
        connection = cleverbridge(vendors)
        warm(connection, "cleverbridge")
        stale = type(connection).objects.get(pk=connection.pk)  # loaded before the archive
        connection_archive(connection=connection, actor=ACTOR)
        result = call(stale, "cleverbridge")
        assert result.status_code is None and result.error_code in ("archived", "no_credential")


class TestQuerySetWrites:
    """Every write the QuerySet offers moves the generation (no signal covers these)."""

    def test_update_under_select_for_update(self, vendors):
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        with transaction.atomic():
            Credential.objects.select_for_update().filter(pk=old.pk).update(meta={**old.meta, "note": "locked"})
        assert credrows.current_credential(connection.pk).meta["note"] == "locked"

    def test_bulk_update(self, vendors):
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        old.meta = {**old.meta, "note": "bulk"}
        Credential.objects.bulk_update([old], ["meta"])
        assert credrows.current_credential(connection.pk).meta["note"] == "bulk"

    def test_bulk_create_and_delete(self, vendors):
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        Credential.objects.filter(pk=old.pk).delete()
        assert credrows.current_credential(connection.pk) is None
        [new] = Credential.objects.bulk_create([Credential(
            connection=connection, version=old.version + 1, secret=old.reveal(), fingerprint=old.fingerprint,
            meta=old.meta, state=CredentialState.ACTIVE)])
        assert credrows.current_credential(connection.pk).pk == new.pk


class TestOtherProcesses:
    def test_a_write_in_another_thread(self, vendors):
        connection = cleverbridge(vendors)
        old = warm(connection, "cleverbridge")
        new = in_thread(lambda: secret_replace(connection=connection, secret=dict(DEMO_CREDENTIALS["cleverbridge"]),
                                               actor=ACTOR))
        assert new.pk != old.pk
        assert assert_uses_active(connection, "cleverbridge").credential_id == new.pk

    def test_a_refresh_rotation_in_another_thread(self, vendors):
        connection = cleanlist(vendors)
        old = warm(connection, "cleanlist")
        outcome = in_thread(lambda: rotate(connection=connection, actor=ACTOR))
        assert outcome.state == "succeeded", outcome.message
        assert assert_uses_active(connection, "cleanlist").credential_id != old.pk

    @pytest.mark.process
    def test_a_rotation_in_another_os_process(self, vendors):
        connection = cleanlist(vendors)
        old = warm(connection, "cleanlist")
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "rotation" / "rotation_worker.py"),
                               connection.name, "0"], cwd=ROOT, env=worker_env(), capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert assert_uses_active(connection, "cleanlist").credential_id != old.pk


class TwoProcesses(RuleBasedStateMachine):
    """Writes from two "processes" (two caches; process B writes on its own database connection,
    in a thread) mixed with reads from both: every read is the database's active credential."""

    def __init__(self):
        super().__init__()
        self.connection = factories.connection("cleverbridge", base_url="https://api.example.com")
        self.caches = {"A": credrows.CredentialCache(), "B": credrows.CredentialCache()}

    def write(self, process: str, action):
        if process == "A":
            return action()
        return in_thread(action)

    @rule(process=st.sampled_from("AB"), password=st.text("abcdef", min_size=1, max_size=6))
    def replace(self, process, password):
        self.write(process, lambda: secret_replace(connection=self.connection,
                                                   secret={"username": "u", "password": password}, actor=ACTOR))

    @rule(process=st.sampled_from("AB"), note=st.integers(0, 3))
    def touch_meta(self, process, note):
        def action():
            active = active_credential(self.connection)
            if active is not None:
                active.meta = {**active.meta, "note": note}
                active.save(update_fields=["meta"])
        self.write(process, action)

    @rule(process=st.sampled_from("AB"), password=st.text("abcdef", min_size=1, max_size=6))
    def rewrite_secret(self, process, password):
        def action():
            Credential.objects.active().filter(connection=self.connection).update(
                secret=Sealed(encrypt_json({"username": "u", "password": password})))
        self.write(process, action)

    @rule(process=st.sampled_from("AB"))
    def retire(self, process):
        self.write(process, lambda: Credential.objects.active().filter(connection=self.connection).update(
            state=CredentialState.RETIRED))

    @rule(process=st.sampled_from("AB"))
    def activate_newest(self, process):
        def action():
            newest = Credential.objects.filter(connection=self.connection).order_by("-version").first()
            if newest is not None and newest.state != CredentialState.ACTIVE:
                credential_activate(credential=newest)
        self.write(process, action)

    @rule(process=st.sampled_from("AB"))
    def read(self, process):
        self.check(process)

    @invariant()
    def both_read_the_database(self):
        for process in "AB":
            self.check(process)

    def check(self, process):
        cache = self.caches[process]
        got = cache.get(self.connection.pk)
        truth = active_credential(self.connection)
        if truth is None:
            assert got is None
            return
        assert got is not None and got.pk == truth.pk and got.meta == truth.meta
        plain = cache.revealed(got)
        assert (plain if plain is not None else got.reveal()) == truth.reveal()


def test_two_processes_model():
    run_state_machine_as_test(TwoProcesses, settings=settings(
        max_examples=int(os.environ.get("ROTATION_MODEL_EXAMPLES", "20")), stateful_step_count=12,
        deadline=None, suppress_health_check=list(HealthCheck)))


class TestSentBeforeChecked:
    """A kept credential goes out unchecked when the call is one plain request; the limiter's script
    checks its generation in the same round trip as its decision (client.send, attempt.py)."""

    def test_a_warm_call_makes_one_redis_round_trip(self, vendors, monkeypatch):
        from redis.connection import AbstractConnection

        connection = cleverbridge(vendors)
        warm(connection, "cleverbridge")
        reads = []
        original = AbstractConnection.read_response

        def counted(self, *args, **kwargs):
            reads.append(1)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(AbstractConnection, "read_response", counted)
        assert call(connection, "cleverbridge").ok
        assert len(reads) == 1  # the limiter's decision, with the check; the release reads nothing

    def test_a_stale_check_takes_nothing_and_says_so(self, vendors):
        from connections.outbound.throttle import DatabaseLimiter, get_limiter
        from connections.providers.http import Rule, ThrottlePlan

        connection = cleverbridge(vendors)
        warm(connection, "cleverbridge")
        gen_key, writing_key = credgen.generations().keys(connection.pk)
        current, _writing = credgen.generations().read(connection.pk)
        plan = ThrottlePlan(rules=(Rule("concurrency", "test:stale", 1),), block_scope="test:stale")
        limiter = get_limiter()
        stale = limiter.acquire(plan, max_wait=1, check=(gen_key, writing_key, current - 1))
        assert not stale.ok and stale.reason == "stale" and limiter.in_flight("test:stale") == 0
        fresh = limiter.acquire(plan, max_wait=1, check=(gen_key, writing_key, current))
        assert fresh.ok and limiter.in_flight("test:stale") == 1
        limiter.release(fresh)
        # A limiter that cannot check (the database's) refuses every check: the caller reads the row.
        assert DatabaseLimiter().acquire(plan, max_wait=1, check=(gen_key, writing_key, current)).reason == "stale"
