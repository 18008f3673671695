"""A quicker flush after each transactional test (`django_db(transaction=True)`) on PostgreSQL.

Django empties the database after such a test with one TRUNCATE of every table. On PostgreSQL that
costs about 0.6 s whatever the test wrote: TRUNCATE gives every table, partition and index a new
file, and the request log alone is some 25 day partitions with their indexes. This flush deletes
the rows of the tables that have any instead, in one transaction: the foreign keys Django makes are
DEFERRABLE INITIALLY DEFERRED, so the order does not matter. A table with a trigger refusing DELETE
(the append-only audit table, migration 0011) is truncated, as before. The end state is Django's:
every table empty, sequences untouched (a flush without reset_sequences does not reset them), then
post_migrate as usual. reset_sequences, allow_cascade and other databases use Django's own SQL.
"""

from __future__ import annotations

import time

from django.core.management import sql as management_sql
from django.core.management.commands import flush as flush_command
from django.db import IntegrityError, OperationalError

_django_sql_flush = management_sql.sql_flush


def sql_flush(style, connection, reset_sequences=True, allow_cascade=False):
    if connection.vendor != "postgresql" or reset_sequences or allow_cascade:
        return _django_sql_flush(style, connection, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    if not tables:
        return []
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(f"(SELECT {i} FROM {qn(t)} LIMIT 1)" for i, t in enumerate(tables)))
        filled = [tables[i] for (i,) in cursor.fetchall()]
        # Row triggers on DELETE (tgtype bits: 1 row, 8 delete) that are not the foreign keys' own.
        cursor.execute("SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                       "WHERE NOT t.tgisinternal AND t.tgtype & 9 = 9 AND c.relname = ANY(%s)", [filled])
        refuse_delete = {name for (name,) in cursor.fetchall()}
    statements = [f"DELETE FROM {qn(t)}" for t in filled if t not in refuse_delete]
    if refuse_delete:
        statements.insert(0, "TRUNCATE " + ", ".join(qn(t) for t in sorted(refuse_delete)))
    return statements


def _execute_sql_flush(execute):
    """The flush's statements, tried again when a live-server thread of the test (a rotation
    started from a page) was still writing: PostgreSQL broke a deadlock between its row locks and
    the DELETEs, or it inserted a row (a request log row) referencing one the flush had just
    deleted. Django's TRUNCATE would wait for it instead; once the writer has finished, the flush
    (one transaction, rolled back whole) goes through."""

    def run(sql_list):
        for attempt in range(5):
            try:
                return execute(sql_list)
            except (OperationalError, IntegrityError) as exc:
                racing = "deadlock" in str(exc) or "foreign key" in str(exc)
                if not racing or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
    return run


def install() -> None:
    flush_command.sql_flush = sql_flush
    from django.db.backends.postgresql.operations import DatabaseOperations

    if not getattr(DatabaseOperations.execute_sql_flush, "retries_deadlocks", False):
        original = DatabaseOperations.execute_sql_flush

        def execute_sql_flush(self, sql_list):
            return _execute_sql_flush(lambda statements: original(self, statements))(sql_list)

        execute_sql_flush.retries_deadlocks = True
        DatabaseOperations.execute_sql_flush = execute_sql_flush
