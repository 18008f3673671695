"""Test all: every enabled connection's test runs as a Celery task; the batch's progress lives in
the cache (Redis in production), so any web process can report it and any worker can add to it.

Keys, all expiring after BATCH_TTL: testall:<id>:total, :done, :failed, :started (Unix time),
and :c<connection id> (counted once, so a task redelivered after a worker crash is not counted twice).
"""

from __future__ import annotations

import time
import uuid

from django.core.cache import cache
from django.db import transaction

from ..models import Connection
from .audit import Actor, audit

BATCH_TTL = 3600
STALL_SECONDS = 30  # no task finished after this long: probably no worker running


def _key(batch_id: str, part: str) -> str:
    return f"testall:{batch_id}:{part}"


def valid_batch_id(batch_id: str) -> bool:
    return len(batch_id) == 32 and all(ch in "0123456789abcdef" for ch in batch_id)


def test_all_start(*, actor: Actor) -> dict:
    """Queue the test of every enabled connection (after commit) and return the batch's progress."""
    from ..tasks import run_test_in_batch

    ids = list(Connection.objects.filter(enabled=True).order_by("name").values_list("id", flat=True))
    batch_id = uuid.uuid4().hex
    cache.set_many({_key(batch_id, "total"): len(ids), _key(batch_id, "done"): 0, _key(batch_id, "failed"): 0,
                    _key(batch_id, "started"): time.time()}, BATCH_TTL)
    for pk in ids:
        transaction.on_commit(lambda pk=pk: run_test_in_batch.delay(pk, batch_id, actor.label))
    audit(actor=actor, action="test_all", details={"batch": batch_id, "connections": len(ids)})
    return batch_progress(batch_id=batch_id)


def batch_record(*, batch_id: str, connection_id: int, ok: bool) -> None:
    """Count one finished test (once per connection, whatever the redeliveries)."""
    if not cache.add(_key(batch_id, f"c{connection_id}"), 1, BATCH_TTL):
        return
    try:
        cache.incr(_key(batch_id, "done"))
        if not ok:
            cache.incr(_key(batch_id, "failed"))
    except ValueError:  # the batch expired from the cache: nothing to report to anymore
        pass


def batch_progress(*, batch_id: str) -> dict | None:
    parts = ("total", "done", "failed", "started")
    values = cache.get_many([_key(batch_id, p) for p in parts])
    total, done, failed, started = (values.get(_key(batch_id, p)) for p in parts)
    if total is None:
        return None
    done, failed = min(done or 0, total), failed or 0
    elapsed = time.time() - (started or time.time())
    return {
        "id": batch_id,
        "total": total,
        "done": done,
        "failed": failed,
        "passed": done - failed,
        "percent": round(100 * done / total) if total else 100,
        "complete": done >= total,
        "elapsed": int(elapsed),
        "stalled": done < total and done == 0 and elapsed > STALL_SECONDS,
    }
