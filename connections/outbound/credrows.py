"""The active credential of a connection, read on every outbound call, as one prepared SELECT.

`Credential.objects.active().filter(connection_id=…).first()` costs the ORM's query building on
every call (the model's ordering, ["connection", "-version"], even joins the connections table to
order by its name), more than the round trip itself. At most one credential per connection is
active (a partial unique constraint), so no ordering is needed: the statement is built once per
process and database, and the row is read as the ORM would (models/rows.py). It is still read on
every call: that read is what guarantees no stale credential after a rotation
(docs/performance.md).
"""

from __future__ import annotations

from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections

from ..choices import CredentialState
from ..models import Credential
from ..models.rows import Columns, columns


@cache
def _statement(alias: str) -> tuple[str, Columns]:
    db = connections[alias]
    quote = db.ops.quote_name
    table = quote(Credential._meta.db_table)
    fields = Credential._meta.concrete_fields
    sql = (f"SELECT {', '.join(f'{table}.{quote(f.column)}' for f in fields)} FROM {table} "
           f"WHERE {table}.{quote('connection_id')} = %s AND {table}.{quote('state')} = %s LIMIT 1")
    return sql, columns(db, fields)


def active_credential(connection_id: int, using: str = DEFAULT_DB_ALIAS) -> Credential | None:
    """The connection's active credential, read now, or None."""
    db = connections[using]
    sql, cols = _statement(using)
    with db.cursor() as cursor:
        cursor.execute(sql, [connection_id, CredentialState.ACTIVE.value])
        row = cursor.fetchone()
    return None if row is None else cols.instance(Credential, db, row)
