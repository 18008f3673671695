"""Request log rollups: counts per connection and time bucket, kept exact as rows are written.

The overview (2,000 connections) and the error history (30 days) read these small tables instead
of the request log. They are maintained by a database trigger on connections_requestlog (AFTER
INSERT, FOR EACH ROW), so every writer counts: the client's insert, bulk_create, COPY, an import.
The upsert runs in the inserting transaction: a row and its counts commit together or not at all,
and the current, partial bucket is always exact (docs/performance.md, "Rollups").

- RequestRollup: per connection and minute ("m", kept ROLLUP_MINUTE_HOURS) or hour ("h", kept as
  long as errors are): totals by outcome and status class, 429s, latency sum and maximum.
- ErrorRollup: error rows (outcome other than ok) per connection, hour ("h") or UTC day ("d"),
  outcome, status (0: no answer) and vendor error code: count, first and last seen, latest row id,
  an example message. The error history's chart and groups come from it.

Rows deleted from the request log (retention) are not subtracted: a rollup counts what was written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection as default_connection
from django.db import models

MINUTE, HOUR, DAY = "m", "h", "d"
ROLLUP_MINUTE_HOURS = 3  # minute buckets back this far: the overview reads the last 60 minutes


class RequestRollup(models.Model):
    connection = models.ForeignKey("connections.Connection", on_delete=models.CASCADE, related_name="+",
                                   db_constraint=False)
    span = models.CharField(max_length=1)  # MINUTE or HOUR
    bucket = models.DateTimeField()  # the bucket's start, UTC
    total = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0)
    http_error = models.PositiveIntegerField(default=0)
    network_error = models.PositiveIntegerField(default=0)
    timeout = models.PositiveIntegerField(default=0)
    throttled = models.PositiveIntegerField(default=0)  # outcome throttled (our limiter or a vendor 429)
    limited = models.PositiveIntegerField(default=0)  # status 429 or outcome throttled: what the overview calls throttled
    status_2xx = models.PositiveIntegerField(default=0)
    status_3xx = models.PositiveIntegerField(default=0)
    status_4xx = models.PositiveIntegerField(default=0)
    status_5xx = models.PositiveIntegerField(default=0)
    status_429 = models.PositiveIntegerField(default=0)
    no_status = models.PositiveIntegerField(default=0)
    duration_sum = models.BigIntegerField(default=0)  # ms
    duration_max = models.PositiveIntegerField(default=0)  # ms

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "span", "bucket"], name="rollup_bucket")]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.span} {self.bucket:%Y-%m-%d %H:%M}: {self.total}"

    @property
    def errors(self) -> int:
        return self.total - self.ok


class ErrorRollup(models.Model):
    connection = models.ForeignKey("connections.Connection", on_delete=models.CASCADE, related_name="+",
                                   db_constraint=False)
    span = models.CharField(max_length=1)  # HOUR or DAY
    bucket = models.DateTimeField()
    provider = models.CharField(max_length=32)
    outcome = models.CharField(max_length=20)
    status_code = models.PositiveSmallIntegerField(default=0)  # 0: no answer (a unique key cannot hold NULL)
    error_code = models.CharField(max_length=100, blank=True)
    count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    latest_id = models.BigIntegerField()
    message = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["span", "bucket", "connection", "outcome", "status_code",
                                                       "error_code"], name="error_rollup_bucket")]
        indexes = [models.Index(fields=["connection", "span", "bucket"], name="error_rollup_conn")]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.span} {self.bucket:%Y-%m-%d %H:%M} {self.outcome} {self.status_code}"


# ----------------------------------------------------------------------------- the trigger
# Both vendors run the same upserts (INSERT ... ON CONFLICT DO UPDATE); PostgreSQL truncates in
# UTC whatever the session's time zone, SQLite stores UTC text (Django's format) already.

_COUNTS = ("total", "ok", "http_error", "network_error", "timeout", "throttled", "limited", "status_2xx",
           "status_3xx", "status_4xx", "status_5xx", "status_429", "no_status", "duration_sum")


def _flags(n: str, truthy) -> list[str]:
    """The counters of one request log row `n` (NEW in the trigger, `l` in rebuild), in _COUNTS order."""
    s = f"{n}.status_code"
    return [
        "1", truthy(f"{n}.outcome = 'ok'"), truthy(f"{n}.outcome = 'http_error'"),
        truthy(f"{n}.outcome = 'network_error'"), truthy(f"{n}.outcome = 'timeout'"),
        truthy(f"{n}.outcome = 'throttled'"), truthy(f"({n}.outcome = 'throttled' OR {s} = 429)"),
        truthy(f"{s} BETWEEN 200 AND 299"), truthy(f"{s} BETWEEN 300 AND 399"),
        truthy(f"{s} BETWEEN 400 AND 499"), truthy(f"{s} BETWEEN 500 AND 599"), truthy(f"{s} = 429"),
        truthy(f"{s} IS NULL"), f"{n}.duration_ms",
    ]


def _upserts(n: str, *, minute: str, hour: str, day: str, truthy, greatest: str, least: str) -> list[str]:
    cols = ", ".join(_COUNTS)
    r, e = "connections_requestrollup", "connections_errorrollup"
    updates = ", ".join(f"{c} = {r}.{c} + excluded.{c}" for c in _COUNTS)
    flags = ", ".join(_flags(n, truthy))
    rollup = (f"INSERT INTO {r} (connection_id, span, bucket, {cols}, duration_max) "
              f"VALUES ({n}.connection_id, 'm', {minute}, {flags}, {n}.duration_ms), "
              f"({n}.connection_id, 'h', {hour}, {flags}, {n}.duration_ms) "
              f"ON CONFLICT (connection_id, span, bucket) DO UPDATE SET {updates}, "
              f"duration_max = {greatest}({r}.duration_max, excluded.duration_max)")
    err_cols = ("connection_id, span, bucket, provider, outcome, status_code, error_code, count, first_seen, "
                "last_seen, latest_id, message")
    row = (f"{n}.provider, {n}.outcome, COALESCE({n}.status_code, 0), {n}.error_code, 1, {n}.started_at, "
           f"{n}.started_at, {n}.id, {n}.error_message")
    errors = (f"INSERT INTO {e} ({err_cols}) "
              f"SELECT {n}.connection_id, 'h', {hour}, {row} WHERE {n}.outcome <> 'ok' "
              f"UNION ALL SELECT {n}.connection_id, 'd', {day}, {row} WHERE {n}.outcome <> 'ok' "
              "ON CONFLICT (span, bucket, connection_id, outcome, status_code, error_code) DO UPDATE SET "
              f"count = {e}.count + 1, first_seen = {least}({e}.first_seen, excluded.first_seen), "
              f"last_seen = {greatest}({e}.last_seen, excluded.last_seen), "
              f"latest_id = {greatest}({e}.latest_id, excluded.latest_id), "
              f"message = {greatest}({e}.message, excluded.message)")
    return [rollup, errors]


def _pg_truthy(expr: str) -> str:
    return f"({expr})::int"


def _sqlite_truthy(expr: str) -> str:
    return f"COALESCE(({expr}), 0)"


PG_FUNCTION = """
CREATE OR REPLACE FUNCTION connections_requestlog_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.outcome <> 'ok' THEN
    {errors};
  END IF;
  {rollup};
  RETURN NULL;
END $$;
"""


def pg_install_sql() -> list[str]:
    rollup, errors = _upserts("NEW", minute="date_trunc('minute', NEW.started_at, 'UTC')",
                              hour="date_trunc('hour', NEW.started_at, 'UTC')",
                              day="date_trunc('day', NEW.started_at, 'UTC')",
                              truthy=lambda e: f"COALESCE({_pg_truthy(e)}, 0)", greatest="GREATEST", least="LEAST")
    errors = errors.replace(" WHERE NEW.outcome <> 'ok'", "")  # the IF above decides
    return [PG_FUNCTION.format(rollup=rollup, errors=errors),
            "DROP TRIGGER IF EXISTS requestlog_rollup ON connections_requestlog",
            "CREATE TRIGGER requestlog_rollup AFTER INSERT ON connections_requestlog "
            "FOR EACH ROW EXECUTE FUNCTION connections_requestlog_rollup()"]


def sqlite_install_sql() -> list[str]:
    rollup, errors = _upserts("NEW", minute="strftime('%Y-%m-%d %H:%M:00', NEW.started_at)",
                              hour="strftime('%Y-%m-%d %H:00:00', NEW.started_at)",
                              day="strftime('%Y-%m-%d 00:00:00', NEW.started_at)",
                              truthy=_sqlite_truthy, greatest="max", least="min")
    return ["DROP TRIGGER IF EXISTS requestlog_rollup",
            f"CREATE TRIGGER requestlog_rollup AFTER INSERT ON connections_requestlog BEGIN {rollup}; {errors}; END"]


def install(schema_editor) -> None:
    """Create (or replace) the trigger on this database; used by the migrations."""
    vendor = schema_editor.connection.vendor
    statements = pg_install_sql() if vendor == "postgresql" else sqlite_install_sql() if vendor == "sqlite" else []
    for sql in statements:
        schema_editor.execute(sql, params=None)


def rebuild(*, since: datetime | None = None, using=None) -> None:
    """Recompute the rollups from the request log (after a COPY that bypassed the trigger, or to
    backfill history): every bucket from the UTC day of `since` on (all of them without). Minute
    buckets only for the last ROLLUP_MINUTE_HOURS, as the hourly maintenance keeps them."""
    from django.utils import timezone

    conn = using or default_connection
    if since is not None:
        since = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes_from = (timezone.now() - timedelta(hours=ROLLUP_MINUTE_HOURS)).replace(second=0, microsecond=0)
    if since is not None:
        minutes_from = max(minutes_from, since)
    after = " AND started_at >= %s" if since else ""
    params = [since] if since else []
    with conn.cursor() as cursor:
        for table in ("connections_requestrollup", "connections_errorrollup"):
            cursor.execute(f"DELETE FROM {table} {'WHERE bucket >= %s' if since else ''}", params)
        if conn.vendor == "postgresql":
            trunc = "date_trunc('{unit}', started_at, 'UTC')"
            truthy = lambda e: f"COALESCE(({e})::int, 0)"  # noqa: E731
        else:
            # %% : these statements are run with parameters
            fmt = {"minute": "%%Y-%%m-%%d %%H:%%M:00", "hour": "%%Y-%%m-%%d %%H:00:00", "day": "%%Y-%%m-%%d 00:00:00"}
            trunc = "strftime('{unit}', started_at)"
            truthy = _sqlite_truthy
        sums = ", ".join(f"SUM({v})" for v in _flags("l", truthy))
        for span, unit in ((MINUTE, "minute"), (HOUR, "hour")):
            bucket = trunc.format(unit=unit if conn.vendor == "postgresql" else fmt[unit])
            cutoff, extra = (" AND l.started_at >= %s", [minutes_from]) if span == MINUTE else ("", [])
            cursor.execute(
                f"INSERT INTO connections_requestrollup (connection_id, span, bucket, {', '.join(_COUNTS)}, duration_max) "
                f"SELECT l.connection_id, '{span}', {bucket.replace('started_at', 'l.started_at')}, {sums}, "
                f"MAX(l.duration_ms) FROM connections_requestlog l WHERE true {after.replace('started_at', 'l.started_at')}"
                f"{cutoff} GROUP BY 1, 3", params + extra)
        for span, unit in ((HOUR, "hour"), (DAY, "day")):
            bucket = trunc.format(unit=unit if conn.vendor == "postgresql" else fmt[unit])
            cursor.execute(
                "INSERT INTO connections_errorrollup (connection_id, span, bucket, provider, outcome, status_code, "
                "error_code, count, first_seen, last_seen, latest_id, message) "
                f"SELECT connection_id, '{span}', {bucket}, MAX(provider), outcome, COALESCE(status_code, 0), "
                "error_code, COUNT(*), MIN(started_at), MAX(started_at), MAX(id), MAX(error_message) "
                f"FROM connections_requestlog WHERE outcome <> 'ok'{after} "
                "GROUP BY connection_id, 3, outcome, COALESCE(status_code, 0), error_code", params)
