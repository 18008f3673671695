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
def conn():
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
from connections.outbound.call import insert_log
from tests.test_logrows_behind import row
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
