"""Transactions whose commit does not wait for the disk, for rows that are cheap to lose in a power
cut: the request log and the rate limiter's state. Never credentials or the rotation journal.

PostgreSQL: synchronous_commit off for this transaction only. SQLite (write-ahead log):
synchronous=NORMAL on this connection while the transaction commits, then back to what it was.
Either way a crashed process loses nothing and the database is never corrupted; a power cut may
lose the last commits (the WAL is flushed by the next durable commit or checkpoint, in order).
Each durable commit costs an fsync (~4 ms here) and, on SQLite, holds the one write lock for it.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction


@contextmanager
def fast_commit(using: str = DEFAULT_DB_ALIAS):
    """transaction.atomic() with a commit that does not wait for the disk (a savepoint, as durable
    as the caller's transaction, inside one)."""
    conn = connections[using]
    outer = conn.in_atomic_block
    restore = None
    if conn.vendor == "sqlite" and not outer:
        with conn.cursor() as cursor:
            if not hasattr(conn, "durable_synchronous"):  # the configured level, read once
                conn.durable_synchronous = int(cursor.execute("PRAGMA synchronous").fetchone()[0])
            restore = conn.durable_synchronous
            cursor.execute("PRAGMA synchronous = NORMAL")
    try:
        with transaction.atomic(using=using):
            if conn.vendor == "postgresql" and not outer:
                with conn.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            yield
    finally:
        if restore is not None and conn.connection is not None:
            with conn.cursor() as cursor:
                cursor.execute(f"PRAGMA synchronous = {restore}")
