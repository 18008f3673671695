"""The request log row of an attempt (PostgreSQL, outside a transaction): sent behind, or in one
round trip.

The ORM's create() inside fast_commit() costs four round trips to the database per attempt
(BEGIN, SET LOCAL synchronous_commit, INSERT, COMMIT) and the building of the INSERT each time.
Here the statement is built once per process, and the commit that does not wait for the disk is
asked for inside the statement (set_config(..., is_local => true) lasts until the end of the
statement's own transaction, and the commit reads it before it is reset). Same columns, same
defaults, same trigger; the caller falls back to the ORM inside a caller's transaction (a
savepoint) and on SQLite.

Written behind (`insert_behind`, autocommit on dashboard/pgbackend's connections): the row's id is
taken from a block reserved from the table's identity sequence (one round trip per BLOCK rows, and
a block is used for at most BLOCK_SECONDS, so ids stay close to the order rows arrive in), the
INSERT is built with its values inlined (psycopg's ClientCursor.mogrify) and sent into the server's
socket without waiting for the server to run it. The server runs and commits it whether or not
the process reads the answer; the answer is read at the connection's next use, at the end of the
web request or the task, or at close, and a failure is logged then (docs/decisions.md, "The
request log row is written behind").
"""

from __future__ import annotations

import logging
import time
from functools import cache

from psycopg import ClientCursor

from ..models import RequestLog

log = logging.getLogger("connections.outbound.call")  # where insert_log logs a row it could not write

BLOCK = 64  # ids reserved per round trip (per database connection)
BLOCK_SECONDS = 1.0  # ids older than this are dropped (gaps are fine; the live tail reads by id)


@cache
def _statement(*, returning: bool = True, with_id: bool = False) -> tuple[str, tuple]:
    fields = tuple(f for f in RequestLog._meta.concrete_fields if with_id or not f.primary_key)
    columns = ", ".join(f'"{f.column}"' for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (f"WITH durability AS (SELECT set_config('synchronous_commit', 'off', true)) "
           f'INSERT INTO "{RequestLog._meta.db_table}" ({columns}) SELECT {placeholders} FROM durability')
    return (sql + ' RETURNING "id"' if returning else sql), fields


def _params(conn, fields, values: dict) -> list:
    params = []
    for f in fields:
        value = values[f.attname] if f.attname in values else values.get(f.name, f.get_default())
        if hasattr(value, "pk") and f.is_relation:
            value = value.pk
        params.append(f.get_db_prep_save(value, conn))
    return params


def insert_fast(conn, values: dict) -> int:
    """Insert one row (field name -> value, model defaults for the rest); its id."""
    sql, fields = _statement()
    with conn.cursor() as cursor:
        cursor.execute(sql, _params(conn, fields, values))
        return cursor.fetchone()[0]


def can_write_behind(conn) -> bool:
    """This Django connection (PostgreSQL, autocommit, not in an atomic block) sends behind."""
    return (not conn.in_atomic_block and conn.get_autocommit()
            and callable(getattr(conn.connection, "write_behind", None)))


def insert_behind(conn, values: dict) -> int:
    """Insert one row without waiting for the server; its id (reserved beforehand). Errors sending
    raise (django.db.Error); errors the server reports later are logged when the answer is read."""
    sql, fields = _statement(returning=False, with_id=True)
    raw = conn.connection
    pk = _next_id(conn, raw)
    params = _params(conn, fields, {**values, "id": pk})
    with conn.wrap_database_errors:
        mogrifier = raw.__dict__.get("_requestlog_mogrifier")
        if mogrifier is None:
            mogrifier = raw._requestlog_mogrifier = ClientCursor(raw)
        query = mogrifier.mogrify(sql, params)
        method, operation = values.get("method"), values.get("operation")

        def on_error(error: type[Exception]) -> None:
            log.warning("could not write the request log row for %s %s (%s); the call's result is kept",
                        method, operation, error.__name__)

        if not raw.write_behind(query.encode(raw.info.encoding), on_error):  # a transaction began meanwhile
            return insert_fast(conn, values)
    if conn.queries_logged:  # CaptureQueriesContext and DEBUG see it as any other statement
        conn.queries_log.append({"sql": query, "time": "0.000"})
    return pk


def _next_id(conn, raw) -> int:
    ids, at = raw.__dict__.get("_requestlog_ids") or ([], 0.0)
    now = time.monotonic()
    if not ids or now - at > BLOCK_SECONDS:
        with conn.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                           [RequestLog._meta.db_table, BLOCK])
            ids = [pk for (pk,) in reversed(cursor.fetchall())]
        raw._requestlog_ids = (ids, now)
    return ids.pop()
