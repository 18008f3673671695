"""Request log retention. On PostgreSQL the log is partitioned by day (partitions.py): whole days
are dropped, never deleted row by row. On SQLite (the plain table) old rows are deleted in small
batches so the table is never locked for long.

Successful attempts are kept LOG_RETENTION_DAYS; errors (any outcome but ok) are kept
ERROR_LOG_RETENTION_DAYS, or LOG_RETENTION_DAYS if that is longer. 0 keeps rows forever.
SQLite: each batch selects at most `batch_size` ids through an index and deletes them in its own
transaction, so other writers wait for one short batch at most, and an interrupted run
leaves nothing half-done (the next run continues).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import partitions
from .models import Outcome, RequestLog
from .rollups import DAY, HOUR, MINUTE, ROLLUP_MINUTE_HOURS, ErrorRollup, RequestRollup

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000


@dataclass(frozen=True)
class PurgeResult:
    ok_deleted: int
    errors_deleted: int
    batches: int
    ok_cutoff: datetime | None
    error_cutoff: datetime | None
    partitions_dropped: int = 0  # PostgreSQL: day partitions (or their ok halves) dropped
    partition_rows_estimate: int = 0  # the rows those held (planner statistics, not a count)

    @property
    def deleted(self) -> int:
        return self.ok_deleted + self.errors_deleted


def _delete_in_batches(qs: QuerySet[RequestLog], *, batch_size: int, pause: float) -> tuple[int, int]:
    deleted = batches = 0
    while True:
        with transaction.atomic():
            ids = list(qs.order_by().values_list("id", flat=True)[:batch_size])
            if not ids:
                break
            count, _ = RequestLog.objects.filter(id__in=ids).delete()
        deleted += count
        batches += 1
        if len(ids) < batch_size:
            break
        if pause:
            time.sleep(pause)
    return deleted, batches


def purge_request_logs(*, now: datetime | None = None, batch_size: int = BATCH_SIZE, pause: float = 0.0,
                       log_days: int | None = None, error_days: int | None = None) -> PurgeResult:
    now = now or timezone.now()
    log_days = settings.LOG_RETENTION_DAYS if log_days is None else log_days
    error_days = settings.ERROR_LOG_RETENTION_DAYS if error_days is None else error_days
    ok_cutoff = now - timedelta(days=log_days) if log_days > 0 else None
    error_cutoff = None
    if log_days > 0 and error_days > 0:
        error_cutoff = now - timedelta(days=max(log_days, error_days))
    ok_deleted = errors_deleted = batches = 0
    if partitions.is_partitioned():
        dropped = partitions.drop_expired(ok_cutoff=ok_cutoff, error_cutoff=error_cutoff)
        ok_left, errors_left, batches = partitions.delete_from_default(
            ok_cutoff=ok_cutoff, error_cutoff=error_cutoff, batch_size=batch_size)
        result = PurgeResult(ok_left, errors_left, batches, ok_cutoff, error_cutoff,
                             len(dropped.ok_days) + len(dropped.whole_days), dropped.rows_estimate)
        logger.info("request log retention: dropped the ok rows of %s day(s) and %s whole day(s) (about %s rows); "
                    "%s rows deleted from the default partition", len(dropped.ok_days), len(dropped.whole_days),
                    dropped.rows_estimate, ok_left + errors_left)
        return result
    if ok_cutoff is not None:
        # Index reqlog_outcome_recent (outcome, started_at): a range scan, not the whole table.
        ok_deleted, n = _delete_in_batches(RequestLog.objects.filter(outcome=Outcome.OK, started_at__lt=ok_cutoff),
                                           batch_size=batch_size, pause=pause)
        batches += n
    if error_cutoff is not None:
        errors_deleted, n = _delete_in_batches(RequestLog.objects.filter(started_at__lt=error_cutoff),
                                               batch_size=batch_size, pause=pause)
        batches += n
    result = PurgeResult(ok_deleted, errors_deleted, batches, ok_cutoff, error_cutoff)
    logger.info("request log retention: %s ok rows older than %s days and %s rows older than %s days deleted "
                "in %s batches", ok_deleted, log_days, errors_deleted, max(log_days, error_days), batches)
    return result


def purge_rollups(*, now: datetime | None = None) -> int:
    """Minute rollups older than ROLLUP_MINUTE_HOURS; hour and day rollups once the rows they count
    are past every retention (kept forever when the log is)."""
    now = now or timezone.now()
    deleted, _ = RequestRollup.objects.filter(span=MINUTE, bucket__lt=now - timedelta(hours=ROLLUP_MINUTE_HOURS)).delete()
    days = max(settings.LOG_RETENTION_DAYS, settings.ERROR_LOG_RETENTION_DAYS)
    if settings.LOG_RETENTION_DAYS > 0 and days > 0:
        cutoff = now - timedelta(days=days + 1)
        deleted += RequestRollup.objects.filter(span=HOUR, bucket__lt=cutoff).delete()[0]
        deleted += ErrorRollup.objects.filter(span__in=[HOUR, DAY], bucket__lt=cutoff).delete()[0]
    return deleted


def maintain_request_log(*, now: datetime | None = None) -> dict:
    """The hourly housekeeping (tasks.maintain_request_log): partitions ahead (PostgreSQL), expired
    rows gone, old rollups gone."""
    created = partitions.ensure_partitions(today=(now or timezone.now()).date()) if partitions.is_partitioned() else []
    purged = purge_request_logs(now=now)
    return {"partitions_created": len(created), "rows_deleted": purged.deleted,
            "partitions_dropped": purged.partitions_dropped, "rollups_deleted": purge_rollups(now=now)}
