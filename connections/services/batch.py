"""Test all: every enabled connection's test runs as a Celery task; the batch's progress lives in
the database (BatchRun, one BatchRunResult per connection), so every web process reports the same
progress, any worker can add to it, and it survives a restart.

A connection is counted once per batch (a unique constraint), so a task redelivered after a
worker crash is not counted twice.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from ..models import BatchRun, BatchRunResult, Connection
from ..taskqueue import queue_on_commit
from .audit import Actor, audit

KEEP = timedelta(days=1)  # a new batch deletes those older than this
STALL_SECONDS = 30  # no task finished after this long: probably no worker running
IN_FLIGHT = timedelta(minutes=10)  # a batch younger than this and not complete is the one in flight


def running_batch_id() -> str | None:
    """The Test all in flight (started recently, not every connection counted yet), if any."""
    recent = (BatchRun.objects.filter(started_at__gte=timezone.now() - IN_FLIGHT)
              .annotate(done=Count("results")).order_by("-started_at"))
    for batch in recent:
        if batch.done < batch.total:
            return batch.id
    return None


def valid_batch_id(batch_id: str) -> bool:
    return len(batch_id) == 32 and all(ch in "0123456789abcdef" for ch in batch_id)


def test_all_start(*, actor: Actor) -> dict:
    """Queue the test of every enabled connection (after commit) and return the batch's progress.

    One Test all in flight at a time: while one runs, a second press returns its progress and queues nothing.
    """
    running = running_batch_id()
    if running is not None:
        return batch_progress(batch_id=running)
    ids = list(Connection.objects.filter(enabled=True).order_by("name").values_list("id", flat=True))
    BatchRun.objects.filter(started_at__lt=timezone.now() - KEEP).delete()
    batch = BatchRun.objects.create(id=uuid.uuid4().hex, total=len(ids))
    for pk in ids:
        queue_on_commit("connections.tasks.run_test_in_batch", pk, batch.id, actor.label)
    audit(actor=actor, action="test_all", details={"batch": batch.id, "connections": len(ids)})
    return batch_progress(batch_id=batch.id)


def batch_record(*, batch_id: str, connection_id: int, ok: bool) -> None:
    """Count one finished test (once per connection, whatever the redeliveries)."""
    if BatchRun.objects.filter(pk=batch_id).exists():  # else deleted as old: nothing to report to
        BatchRunResult.objects.bulk_create([BatchRunResult(batch_id=batch_id, connection_pk=connection_id, ok=ok)],
                                           ignore_conflicts=True)


def batch_progress(*, batch_id: str) -> dict | None:
    batch = (BatchRun.objects.filter(pk=batch_id)
             .annotate(done=Count("results"), failed=Count("results", filter=Q(results__ok=False))).first())
    if batch is None:
        return None
    total, done, failed = batch.total, min(batch.done, batch.total), batch.failed
    elapsed = (timezone.now() - batch.started_at).total_seconds()
    return {
        "id": batch.id,
        "total": total,
        "done": done,
        "failed": failed,
        "passed": done - failed,
        "percent": round(100 * done / total) if total else 100,
        "complete": done >= total,
        "elapsed": int(elapsed),
        "stalled": done < total and done == 0 and elapsed > STALL_SECONDS,
    }
