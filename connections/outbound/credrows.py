"""The active credential of a connection, read on every outbound call, as one prepared SELECT.

`Credential.objects.active().filter(connection_id=…).first()` costs the ORM's query building on
every call (the model's ordering, ["connection", "-version"], even joins the connections table to
order by its name), more than the round trip itself. At most one credential per connection is
active (a partial unique constraint), so no ordering is needed: the statement is built once per
process and database, and the row goes through the fields' own converters (the encrypted secret,
JSON, dates on SQLite) and Model.from_db, as the ORM would. It is still read on every call: that
read is what guarantees no stale credential after a rotation (docs/performance.md).
"""

from __future__ import annotations

from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections

from ..choices import CredentialState
from ..models import Credential


@cache
def _statement(alias: str, vendor: str) -> tuple[str, list[str], list[tuple]]:
    conn = connections[alias]
    quote = conn.ops.quote_name
    table = Credential._meta.db_table
    fields = Credential._meta.concrete_fields
    columns = ", ".join(f"{quote(table)}.{quote(f.column)}" for f in fields)
    sql = (f"SELECT {columns} FROM {quote(table)} "
           f"WHERE {quote(table)}.{quote('connection_id')} = %s AND {quote(table)}.{quote('state')} = %s LIMIT 1")
    converters = []
    for f in fields:
        col = f.get_col(table)
        found = conn.ops.get_db_converters(col) + f.get_db_converters(conn)
        converters.append((col, tuple(found)))
    return sql, [f.attname for f in fields], converters


def active_credential(connection_id: int, using: str = DEFAULT_DB_ALIAS) -> Credential | None:
    """The connection's active credential, read now, or None."""
    conn = connections[using]
    sql, names, converters = _statement(using, conn.vendor)
    with conn.cursor() as cursor:
        cursor.execute(sql, [connection_id, CredentialState.ACTIVE.value])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (col, found) in zip(row, converters, strict=True):
        for converter in found:
            value = converter(value, col, conn)
        values.append(value)
    return Credential.from_db(using, names, values)
