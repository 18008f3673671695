"""The request log on PostgreSQL: declaratively partitioned by time (docs/performance.md).

    connections_requestlog                      PARTITION BY RANGE (started_at), PK (id, started_at, outcome)
      connections_requestlog_p20261129          one UTC day, PARTITION BY LIST (outcome)
        connections_requestlog_p20261129_ok     outcome 'ok'    (kept LOG_RETENTION_DAYS)
        connections_requestlog_p20261129_err    every other     (kept ERROR_LOG_RETENTION_DAYS, if longer)
      connections_requestlog_default            rows no day partition covers (never lost; deleted in batches)

Retention drops whole days (first their ok half, later the rest) once the day is entirely past its
cutoff: DETACH PARTITION (a catalogue change; the parent's lock for milliseconds, taken with a lock
timeout so a long reader never queues every writer behind it), then DROP TABLE of the detached
table, not millions of row deletions, vacuum and bloat. SQLite keeps the plain table and batched DELETEs (retention.py).

Django still sees `id` as the primary key: ids come from one identity sequence, so they stay unique;
the database's key also holds the partition columns, as PostgreSQL requires.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)

TABLE = "connections_requestlog"
DEFAULT = f"{TABLE}_default"
DAYS_AHEAD = 7  # partitions created ahead of time (the task runs hourly: a week of slack)
LOCK_TIMEOUT = "5s"  # for DDL on the parent; a busy table retries at the next run
_DAY = re.compile(rf"^{TABLE}_p(\d{{8}})$")


def is_partitioned(conn=None) -> bool:
    conn = conn or connection
    if conn.vendor != "postgresql":
        return False
    with conn.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s AND relnamespace = current_schema()::regnamespace",
                       [TABLE])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def day_table(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def create_day_sql(day: date) -> list[str]:
    name, start, end = day_table(day), datetime.combine(day, datetime.min.time(), UTC), None
    end = start + timedelta(days=1)
    return [
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {TABLE} FOR VALUES FROM ('{start.isoformat()}') "
        f"TO ('{end.isoformat()}') PARTITION BY LIST (outcome)",
        f"CREATE TABLE IF NOT EXISTS {name}_ok PARTITION OF {name} FOR VALUES IN ('ok')",
        f"CREATE TABLE IF NOT EXISTS {name}_err PARTITION OF {name} DEFAULT",
    ]


def day_partitions(conn=None) -> dict[date, set[str]]:
    """The day partitions that exist, with the halves each still has ("ok", "err")."""
    conn = conn or connection
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, array(SELECT l.relname FROM pg_inherits li JOIN pg_class l ON l.oid = li.inhrelid "
            "WHERE li.inhparent = c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s", [TABLE])
        rows = cursor.fetchall()
    days = {}
    for name, leaves in rows:
        m = _DAY.match(name)
        if m:
            days[datetime.strptime(m.group(1), "%Y%m%d").date()] = {leaf.rsplit("_", 1)[1] for leaf in leaves}
    return days


def _ddl(statements: list[str]) -> bool:
    """Run DDL on the parent in one short transaction with a lock timeout; False if it could not."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            for sql in statements:
                cursor.execute(sql)
        return True
    except DatabaseError as exc:
        # A lock timeout, or rows for that day already in the default partition (they stay there,
        # visible, and retention deletes them in batches). Logged; the next run tries again.
        logger.warning("request log partition maintenance: %s (%s)", statements[0].split(" PARTITION")[0],
                       str(exc).splitlines()[0])
        return False


def ensure_partitions(*, today: date | None = None, days_ahead: int = DAYS_AHEAD) -> list[date]:
    """Create the day partitions from today to days_ahead ahead; returns the days created."""
    today = today or datetime.now(UTC).date()
    existing = day_partitions()
    created = []
    for i in range(days_ahead + 1):
        day = today + timedelta(days=i)
        if day not in existing and _ddl(create_day_sql(day)):
            created.append(day)
    return created


@dataclass(frozen=True)
class Dropped:
    ok_days: list[date]
    whole_days: list[date]
    rows_estimate: int  # pg_class.reltuples of what was dropped (statistics, not a count)


def _estimate(names: list[str]) -> int:
    if not names:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(SUM(GREATEST(c.reltuples, 0)), 0) FROM pg_class c WHERE c.relname = ANY(%s) "
                       "OR c.oid IN (SELECT inhrelid FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
                       "WHERE p.relname = ANY(%s))", [names, names])
        return int(cursor.fetchone()[0])


def _drop(table: str, parent: str) -> bool:
    """Detach (a catalogue change: the parent's exclusive lock for milliseconds), then drop the
    detached table, which no longer locks the parent while its files are removed."""
    return _ddl([f"ALTER TABLE {parent} DETACH PARTITION {table}"]) and _ddl([f"DROP TABLE {table}"])


def _orphans() -> list[str]:
    """Day tables detached by an earlier run whose DROP failed: dropped at the next run."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE %s AND relkind IN ('r', 'p') "
                       "AND NOT relispartition AND relnamespace = current_schema()::regnamespace", [f"{TABLE}_p%"])
        return [name for (name,) in cursor.fetchall()]


def drop_expired(*, ok_cutoff: datetime | None, error_cutoff: datetime | None) -> Dropped:
    """Drop every day partition (or its ok half) that ends at or before its cutoff.

    A day that straddles a cutoff is kept whole until it is entirely past it: on PostgreSQL rows
    live up to one day longer than the retention setting, never shorter."""
    for name in _orphans():
        _ddl([f"DROP TABLE {name}"])
    ok_days, whole_days, estimate = [], [], 0
    for day, halves in sorted(day_partitions().items()):
        end = datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1)
        name = day_table(day)
        if error_cutoff is not None and end <= error_cutoff:
            rows = _estimate([name])
            if _drop(name, TABLE):
                whole_days.append(day)
                estimate += rows
        elif ok_cutoff is not None and end <= ok_cutoff and "ok" in halves:
            rows = _estimate([f"{name}_ok"])
            if _drop(f"{name}_ok", name):
                ok_days.append(day)
                estimate += rows
    return Dropped(ok_days, whole_days, estimate)


def delete_from_default(*, ok_cutoff: datetime | None, error_cutoff: datetime | None,
                        batch_size: int) -> tuple[int, int, int]:
    """Rows of the default partition past their cutoff, deleted in batches (it is normally empty):
    (ok rows deleted, rows deleted past the error cutoff, batches)."""
    counts, batches = [0, 0], 0
    for n_pass, (cutoff, only_ok) in enumerate(((ok_cutoff, True), (error_cutoff, False))):
        if cutoff is None:
            continue
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {DEFAULT} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {DEFAULT} WHERE started_at < %s"
                    f"{' AND outcome = %s' if only_ok else ''} LIMIT %s))",
                    [cutoff, "ok", batch_size] if only_ok else [cutoff, batch_size])
                n = cursor.rowcount
            counts[n_pass] += n
            batches += 1 if n else 0
            if n < batch_size:
                break
    return counts[0], counts[1], batches
