"""The request log row of an attempt in one round trip (PostgreSQL, outside a transaction).

The ORM's create() inside fast_commit() costs four round trips to the database per attempt
(BEGIN, SET LOCAL synchronous_commit, INSERT, COMMIT) and the building of the INSERT each time.
Here the statement is built once per process, and the commit that does not wait for the disk is
asked for inside the statement (set_config(..., is_local => true) lasts until the end of the
statement's own transaction, and the commit reads it before it is reset). Same columns, same
defaults, same trigger; the caller falls back to the ORM inside a caller's transaction (a
savepoint) and on SQLite.
"""

from __future__ import annotations

from functools import cache

from ..models import RequestLog


@cache
def _statement() -> tuple[str, tuple]:
    fields = tuple(f for f in RequestLog._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(f'"{f.column}"' for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (f"WITH durability AS (SELECT set_config('synchronous_commit', 'off', true)) "
           f'INSERT INTO "{RequestLog._meta.db_table}" ({columns}) SELECT {placeholders} FROM durability RETURNING "id"')
    return sql, fields


def insert_fast(conn, values: dict) -> int:
    """Insert one row (field name -> value, model defaults for the rest); its id."""
    sql, fields = _statement()
    params = []
    for f in fields:
        value = values[f.attname] if f.attname in values else values.get(f.name, f.get_default())
        if hasattr(value, "pk") and f.is_relation:
            value = value.pk
        params.append(f.get_db_prep_save(value, conn))
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
