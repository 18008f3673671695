"""Request log retention: delete old rows in small batches so the table is never locked for long.

Successful attempts are kept LOG_RETENTION_DAYS; errors (any outcome but ok) are kept
ERROR_LOG_RETENTION_DAYS, or LOG_RETENTION_DAYS if that is longer. 0 keeps rows forever.
Each batch selects at most `batch_size` ids through an index and deletes them in its own
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

from .models import Outcome, RequestLog

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000


@dataclass(frozen=True)
class PurgeResult:
    ok_deleted: int
    errors_deleted: int
    batches: int
    ok_cutoff: datetime | None
    error_cutoff: datetime | None

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
