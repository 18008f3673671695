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
a block is used for at most BLOCK_SECONDS, so ids stay close to the order rows arrive in). The
INSERT is a server-side prepared statement, prepared once per database connection in the round trip
that reserves its first ids; each row sends only its values (Bind/Execute/Sync, text format, dumped
by psycopg's Transformer: out of band, nothing quoted, nothing for the server to parse or plan) into
the server's socket without waiting for the server to run it. The values are prepared as the ORM
would (get_db_prep_save), skipping it where its result is known (_AS_IS, _prep). The server runs
and commits the row whether or not the process reads the answer; the answer is read at the
connection's next use, at the end of the web request or the task, or at close, and a failure is
logged then (docs/decisions.md, "The request log row is written behind").
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import cache

from django.db import DatabaseError
from psycopg import ClientCursor, errors
from psycopg.adapt import PyFormat, Transformer

from ..models import RequestLog

log = logging.getLogger("connections.outbound.call")  # where insert_log logs a row it could not write

# A connection's first row is written the waiting way (can_write_behind); tests of the written-behind
# path turn this off to exercise it from the first row.
FIRST_ROW_WAITS = True
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


# Values PostgreSQL's get_db_prep_save returns unchanged, by field type: these are stored as they
# are. Any other value (a model instance, a naive datetime, a dict for a JSONField ...) goes through
# the field's own preparation (_prep), as the ORM's.
_AS_IS = {
    "CharField": (str,), "TextField": (str,), "UUIDField": (uuid.UUID,), "FloatField": (float,),
    "IntegerField": (int,), "BigIntegerField": (int,), "SmallIntegerField": (int,), "AutoField": (int,),
    "BigAutoField": (int,), "PositiveIntegerField": (int,), "PositiveSmallIntegerField": (int,),
    "PositiveBigIntegerField": (int,), "ForeignKey": (int,),
}


def _prep(f) -> Callable:
    """How a value of field `f` that is not stored as it is gets prepared (conn, value) -> value:
    what get_db_prep_save gives, with shortcuts where its result is known (an aware datetime is
    stored as it is; a model instance by its int primary key; a dict or list for a JSONField is
    wrapped as Django's PostgreSQL operations wrap it)."""
    kind = f.get_internal_type()
    if f.is_relation:
        def prep(conn, value):
            if hasattr(value, "pk"):
                value = value.pk
                if type(value) is int:
                    return value
            return f.get_db_prep_save(value, conn)
    elif kind == "DateTimeField":
        def prep(conn, value):
            if type(value) is datetime and value.tzinfo is not None:
                return value  # DateTimeField.get_prep_value and adapt_datetimefield_value keep it
            return f.get_db_prep_save(value, conn)
    elif kind == "JSONField":
        def prep(conn, value):
            if type(value) is dict or type(value) is list:
                return conn.ops.adapt_json_value(value, f.encoder)  # JSONField.get_db_prep_value
            return f.get_db_prep_save(value, conn)
    else:
        def prep(conn, value):
            return f.get_db_prep_save(value, conn)
    return prep


@cache
def _prepared() -> tuple[bytes, bytes, str, tuple, list]:
    """The INSERT written behind as a server-side prepared statement: its name (the statement's
    own hash, so a name always means this text), its text with $n placeholders, the same text with
    %s (for Django's query log), one (attname, name, types stored as they are, default, prep) per
    column after the id, and the dump formats (text: the server parses each value as its column's
    type, the parameter types it inferred when it prepared the statement)."""
    sql, fields = _statement(returning=False, with_id=True)
    assert fields[0].primary_key
    parts = sql.split("%s")
    assert len(parts) == len(fields) + 1
    numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
    name = b"sb_requestlog_" + hashlib.sha1(numbered.encode()).hexdigest()[:16].encode()
    plan = tuple((f.attname, f.name, _AS_IS.get(f.get_internal_type(), ()), f.get_default, _prep(f))
                 for f in fields[1:])
    return name, numbered.encode(), sql, plan, [PyFormat.TEXT] * len(fields)


def _row(conn, plan, values: dict, pk: int) -> list:
    """The row's values as the ORM would store them: `values` (attribute or field names), the
    model's defaults for the rest."""
    params = [pk]
    append = params.append
    for attname, name, as_is, default, prep in plan:
        if attname in values:
            value = values[attname]
        elif name in values:
            value = values[name]
        else:
            value = default()
        append(value if value is None or type(value) in as_is else prep(conn, value))
    return params


def can_write_behind(conn) -> bool:
    """This Django connection (PostgreSQL, autocommit, not in an atomic block) sends behind, from
    its second row on. A connection's first row waits for its one round trip instead (insert_fast):
    a web request opens a connection for itself (CONN_MAX_AGE 0), and for its one row reserving ids
    and preparing the statement would cost a round trip and the server's planning more than it saves.
    A worker's task, the CLI or a test-all send many rows on one connection."""
    if conn.in_atomic_block or not conn.get_autocommit():  # (get_autocommit connects)
        return False
    raw = conn.connection
    if not callable(getattr(raw, "write_behind", None)):
        return False
    if raw.__dict__.get("_requestlog_rows") or not FIRST_ROW_WAITS:
        return True
    raw._requestlog_rows = True
    return False


def insert_behind(conn, values: dict) -> int:
    """Insert one row without waiting for the server; its id (reserved beforehand). Errors sending
    raise (django.db.Error); errors the server reports later are logged when the answer is read."""
    name, statement, sql, plan, formats = _prepared()
    raw = conn.connection
    pk = _next_id(conn, raw)
    params = _row(conn, plan, values, pk)
    with conn.wrap_database_errors:
        dumper = raw.__dict__.get("_requestlog_dumper")
        if dumper is None:  # psycopg's adaptation, as its cursors use it (this connection's adapters)
            dumper = raw._requestlog_dumper = Transformer(raw)
        method, operation = values.get("method"), values.get("operation")

        def on_error(error: type[Exception]) -> None:
            log.warning("could not write the request log row for %s %s (%s); the call's result is kept",
                        method, operation, error.__name__)

        if not raw.write_behind(name, statement, dumper.dump_sequence(params, formats), on_error):
            return insert_fast(conn, values)  # a transaction began meanwhile
        if conn.queries_logged:  # CaptureQueriesContext and DEBUG see it as any other statement
            conn.queries_log.append({"sql": ClientCursor(raw).mogrify(sql, params), "time": "0.000"})
    return pk


def _next_id(conn, raw) -> int:
    ids, at = raw.__dict__.get("_requestlog_ids") or ([], 0.0)
    now = time.monotonic()
    if not ids or now - at > BLOCK_SECONDS:
        sql = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"
        name, statement, *_ = _prepared()
        with conn.cursor() as cursor:
            # A new connection prepares the INSERT in the same round trip (Django's client-side
            # binding cursors send one simple query, which may hold several statements).
            params = [RequestLog._meta.db_table, BLOCK]
            if not raw.prepared(name) and isinstance(getattr(cursor, "cursor", None), ClientCursor):
                try:
                    cursor.execute(f"{sql}; PREPARE {name.decode()} AS {statement.decode()}", params)
                except DatabaseError as exc:  # already there (its answer was never read): the same text
                    if not isinstance(exc.__cause__, errors.DuplicatePreparedStatement):
                        raise
                    cursor.execute(sql, params)
                raw.mark_prepared(name)
            else:
                cursor.execute(sql, params)
            ids = [pk for (pk,) in reversed(cursor.fetchall())]
        raw._requestlog_ids = (ids, now)
    return ids.pop()
