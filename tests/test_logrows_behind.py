"""The request log row written behind (connections/outbound/logrows.py, dashboard/pgbackend): sent
into PostgreSQL's socket before insert_log returns, committed even if the process dies next, read
back (settled) at the connection's next use, at the end of a request or a task, or at close."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection as db
from django.db import transaction
from django.test import RequestFactory

from connections.models import RequestLog
from connections.outbound import logrows
from connections.outbound.call import insert_log
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[1]


def row(connection, **extra) -> dict:
    from django.utils import timezone

    return {"connection": connection, "provider": connection.provider, "operation": "test", "method": "GET",
            "path": "/behind", "attempt": 1, "started_at": timezone.now(), "status_code": 200, "outcome": "ok",
            **extra}


def behind() -> bool:
    return bool(getattr(db.connection, "behind", False))


def other_connection() -> psycopg.Connection:
    s = db.settings_dict
    return psycopg.connect(host=s.get("HOST") or "127.0.0.1", port=s.get("PORT") or 5432,
                           user=s.get("USER") or "postgres", dbname=s["NAME"], autocommit=True)


def seen_elsewhere(pk: int) -> bool:
    with other_connection() as other:
        return other.execute("SELECT 1 FROM connections_requestlog WHERE id = %s", [pk]).fetchone() is not None


@pytest.fixture
def conn(monkeypatch):
    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(logrows, "FIRST_ROW_WAITS", False)  # every row behind, the first one too
    return factories.connection("cleverbridge")


def test_a_connections_first_row_waits_and_the_next_ones_go_behind(db_conn_first_row):
    """A web request opens a connection for its one row (CONN_MAX_AGE 0): that row takes one round
    trip (no ids reserved, nothing prepared); a connection that writes more sends them behind."""
    connection = db_conn_first_row
    db.close()
    first = insert_log(**row(connection, path="/first"))
    assert not behind() and seen_elsewhere(first)  # waited for: committed when insert_log returned
    second = insert_log(**row(connection, path="/second"))
    assert behind()
    assert RequestLog.objects.filter(pk__in=[first, second]).count() == 2


@pytest.fixture
def db_conn_first_row():
    if db.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    return factories.connection("cleverbridge")


def test_insert_log_returns_before_the_server_answers_and_reads_its_own_write(conn):
    pk = insert_log(**row(conn))
    assert isinstance(pk, int) and behind()  # sent, answer not read
    # The same connection runs its statements in order: the next query sees the row.
    assert RequestLog.objects.get(pk=pk).path == "/behind"
    assert not behind()  # that query read the answer first


def test_ids_come_from_the_sequence_in_blocks(conn):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(db) as ctx:
        ids = [insert_log(**row(conn)) for _ in range(5)]
    statements = [q["sql"] for q in ctx.captured_queries]
    # One reservation for the block, then the five INSERTs (no RETURNING: the id is known).
    assert len(statements) == 6 and "nextval" in statements[0], statements
    assert all(s.startswith("WITH durability") and "RETURNING" not in s for s in statements[1:])
    assert ids == list(range(ids[0], ids[0] + 5))
    db.connection.settle()
    assert set(RequestLog.objects.filter(pk__in=ids).values_list("pk", flat=True)) == set(ids)
    # ORM rows draw from the same sequence: no id is given twice.
    orm = RequestLog.objects.create(**row(conn))
    assert orm.pk not in ids


def test_settled_at_the_end_of_a_request_and_a_task_then_visible_elsewhere(conn):
    from django.core.signals import request_finished

    from dashboard.celery import _settle_writes
    from dashboard.pgbackend.base import SettleMiddleware

    def view(request):
        view.pk = insert_log(**row(conn))
        assert behind()
        return "response"

    assert SettleMiddleware(view)(RequestFactory().get("/")) == "response"
    assert not behind() and seen_elsewhere(view.pk)

    pk = insert_log(**row(conn))
    assert behind()
    request_finished.send(sender=None)
    assert not behind() and seen_elsewhere(pk)

    pk = insert_log(**row(conn))
    assert behind()
    _settle_writes(task_id="t")
    assert not behind() and seen_elsewhere(pk)

    pk = insert_log(**row(conn))
    db.close()  # closing settles too
    assert seen_elsewhere(pk)


@pytest.mark.parametrize("next_use", ["atomic", "autocommit", "cursor", "close", "orm"])
def test_a_failed_insert_is_logged_at_the_next_use_and_the_connection_keeps_working(conn, caplog, next_use):
    caplog.set_level(logging.WARNING, logger="connections.outbound.call")
    # provider is a varchar(32): a longer value fails at the server, not in Python.
    pk = insert_log(**row(conn, provider="p" * 40, path="/secret-token-abc"))
    assert isinstance(pk, int) and behind() and not caplog.records
    if next_use == "atomic":
        with transaction.atomic():
            RequestLog.objects.create(**row(conn, path="/after"))
    elif next_use == "autocommit":
        db.set_autocommit(False)
        RequestLog.objects.create(**row(conn, path="/after"))
        db.commit()
        db.set_autocommit(True)
    elif next_use == "cursor":
        with db.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        RequestLog.objects.create(**row(conn, path="/after"))
    elif next_use == "close":
        db.close()
        RequestLog.objects.create(**row(conn, path="/after"))
    else:
        RequestLog.objects.create(**row(conn, path="/after"))
    [record] = [r for r in caplog.records if "could not write the request log row" in r.getMessage()]
    message = record.getMessage()
    assert "GET test" in message and "StringDataRightTruncation" in message and "secret-token" not in message
    assert not RequestLog.objects.filter(pk=pk).exists()
    assert list(RequestLog.objects.values_list("path", flat=True)) == ["/after"]
    # And it goes on sending behind.
    again = insert_log(**row(conn, path="/again"))
    assert behind() and RequestLog.objects.get(pk=again).path == "/again"


def test_a_pending_write_then_a_transaction(conn):
    pk = insert_log(**row(conn))
    assert behind()
    with transaction.atomic():
        assert RequestLog.objects.filter(pk=pk).exists()
        inner = insert_log(**row(conn, path="/inside"))  # inside a transaction: the ORM path
        assert not behind()
    assert set(RequestLog.objects.values_list("pk", flat=True)) == {pk, inner}


def test_the_row_survives_a_process_killed_right_after_the_send(conn):
    """A process that sends the row and is killed at once (SIGKILL, or os._exit) leaves its row:
    PostgreSQL runs and commits what is in its socket whether or not the answer is read."""
    s = db.settings_dict
    url = f"postgres://{s.get('USER') or 'postgres'}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "TEST_DATABASE_URL": url,
           "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    code = f"""
import os, signal, sys, json
import django
django.setup()
from django.db import connection
from connections.models import Connection
from connections.outbound import logrows
from connections.outbound import logrows
from connections.outbound.call import insert_log
from tests.test_logrows_behind import row
logrows.FIRST_ROW_WAITS = False
c = Connection.objects.get(pk={conn.pk})
connection.cursor().execute("SELECT pg_sleep(0)")  # connected, ids reserved below
pks = []
for i in range(int(sys.argv[1])):
    pks.append(insert_log(**row(c, path=f"/killed-{{i}}")))
os.write(1, json.dumps({{"pks": pks, "behind": connection.connection.behind}}).encode() + b"\\n")
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
os._exit(0)
"""
    runs = []
    for i in range(6):
        out = subprocess.run([sys.executable, "-c", code, str(1 + i % 3), "kill" if i % 2 else "exit"], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.stdout, out.stderr
        runs.append(json.loads(out.stdout.splitlines()[-1]))
    assert all(r["behind"] for r in runs)  # each process died with its last answer unread
    wanted = {pk for r in runs for pk in r["pks"]}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with other_connection() as other:
            found = {pk for (pk,) in other.execute("SELECT id FROM connections_requestlog WHERE id = ANY(%s)",
                                                   [list(wanted)])}
        if found == wanted:
            break
        time.sleep(0.1)
    assert found == wanted


def test_a_forked_child_leaves_the_parents_answer_alone(conn, caplog):
    """A process forked with a pending statement (a Celery or gunicorn parent) shares the socket:
    only the process that sent the statement reads its answer."""
    caplog.set_level(logging.WARNING, logger="connections.outbound.call")
    pk = insert_log(**row(conn, provider="p" * 40))  # refused by the server: its answer says so
    raw = db.connection
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's own exit code is the result
        raw._behind = lambda error: os._exit(1)  # called only if the child read the answer
        raw.settle()
        os._exit(0)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raw._behind = None  # the child took the answer: do not wait for it here
        pytest.fail("the forked child read its parent's pending answer")
    assert not RequestLog.objects.filter(pk=pk).exists()  # the parent reads it
    assert [r for r in caplog.records if "could not write the request log row" in r.getMessage()]


def prepared_here() -> list[tuple]:
    """This connection's server-side prepared statements that insert request log rows."""
    with db.cursor() as cursor:
        cursor.execute("SELECT name, generic_plans + custom_plans FROM pg_prepared_statements "
                       "WHERE statement LIKE %s", ["%INSERT INTO \"connections_requestlog\"%"])
        return cursor.fetchall()


def test_rows_are_sent_through_a_statement_prepared_once_per_connection(conn, monkeypatch):
    """The INSERT is prepared on the server once per database connection, in the round trip that
    reserves the connection's first ids; each row sends only its values (Bind/Execute), and a new
    connection (a reconnect) prepares it again."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(db) as ctx:
        ids = [insert_log(**row(conn, path=f"/p{i}")) for i in range(4)]
    [(name, runs)] = prepared_here()  # settles the last row first
    assert name.startswith("sb_requestlog_") and runs == 4
    statements = [q["sql"] for q in ctx.captured_queries]
    assert len(statements) == 5 and f"PREPARE {name} AS WITH durability" in statements[0]
    assert all(s.startswith("WITH durability") for s in statements[1:])  # the log shows the values
    first = db.connection.info.backend_pid
    db.close()
    ids.append(insert_log(**row(conn, path="/p4")))
    assert db.connection.info.backend_pid != first and prepared_here() == [(name, 1)]
    assert sorted(RequestLog.objects.filter(pk__in=ids).values_list("path", flat=True)) == [f"/p{i}" for i in range(5)]


def test_a_statement_deallocated_meanwhile_is_prepared_again(conn, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="connections.outbound.call")
    from dashboard.pgbackend.base import PendingConnection

    insert_log(**row(conn, path="/before"))
    with db.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    lost = insert_log(**row(conn, path="/lost"))  # sent to a name the server no longer has
    db.connection.settle()
    assert [r for r in caplog.records if "InvalidSqlStatementName" in r.getMessage()]
    prepares = []
    real = PendingConnection._prepare
    monkeypatch.setattr(PendingConnection, "_prepare", lambda self, *a: (prepares.append(a[0]), real(self, *a))[1])
    after = insert_log(**row(conn, path="/after"))  # ids left in the block: write_behind prepares (waits)
    assert RequestLog.objects.get(pk=after).path == "/after" and not RequestLog.objects.filter(pk=lost).exists()
    assert [name.encode() for name, _ in prepared_here()] == prepares and len(prepares) == 1
    # A statement already there under the name (same text: the name is its hash) is fine.
    db.connection._behind_prepared = frozenset()  # as if this connection had forgotten it
    again = insert_log(**row(conn, path="/again"))
    assert len(prepares) == 2 and RequestLog.objects.get(pk=again).path == "/again"
    # And when the ids' reservation prepares it (the next block), too.
    db.connection._behind_prepared, db.connection._requestlog_ids = frozenset(), None
    block = insert_log(**row(conn, path="/block"))
    assert len(prepares) == 2 and db.connection.prepared(prepared_here()[0][0].encode())
    assert RequestLog.objects.get(pk=block).path == "/block"


def test_values_are_stored_exactly_as_the_orm_stores_them(conn):
    """Parameters go out of band (text format, psycopg's dumpers): quotes, backslashes, unicode,
    JSON, datetimes in another time zone, UUIDs, floats and NULLs come back exactly as the ORM's."""
    import datetime
    import uuid

    tricky = "it's \"quoted\" \\ back\\slash \\x00 $1 %s %(x)s ' OR '1'='1 -- ; é 漢字 🙂 \u2028"
    values = row(conn, path="/" + tricky, chain_id=uuid.uuid4(), attempt=3,
                 started_at=datetime.datetime(2026, 12, 7, 5, 30, 1, 123456,
                                              tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))),
                 duration_ms=12, status_code=None, error_message=tricky + "\x00nul",
                 error_details={"msg": tricky, "nested": [1, 2.5, None, True, {"k'": "v\\"}], "": {}},
                 rate_limit={"remaining": 0, "reset": 1.0e-7}, retry_after=0.1, request_excerpt="a\nb\tc\r",
                 response_content_type="text/plain; charset=\"utf-8\"", actor_label="O'Brien", task_id="",
                 application="app\\1")
    behind_pk = insert_log(**values)
    assert behind()
    with transaction.atomic():  # inside a transaction: the ORM writes the same values
        orm_pk = insert_log(**values)
    columns = [f.attname for f in RequestLog._meta.concrete_fields if not f.primary_key]
    written, by_orm = (RequestLog.objects.filter(pk=pk).values(*columns).get() for pk in (behind_pk, orm_pk))
    assert written == by_orm
    assert written["path"] == "/" + tricky and written["error_message"] == tricky + "\ufffdnul"
    assert written["error_details"]["msg"] == tricky and written["retry_after"] == 0.1
    assert written["started_at"] == values["started_at"] and written["status_code"] is None
