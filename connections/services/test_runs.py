"""On-demand tests (the Test button, an overview row's Test) run in Celery, never in the web thread:
a vendor that stalls holds a worker process for at most the task's time limit, not a web worker.

The button queues `tasks.run_test` and answers at once with a panel that polls the run's state in
the shared cache (Redis, or the database cache of the embedded default), the same in every
process: queued -> running -> done (with the result), like Test all's progress. The task id is the
run id, so the test's RequestLog rows carry it. The CLI's `connections test` stays synchronous.
"""

from __future__ import annotations

import time
import uuid

from django.core.cache import cache

from ..models import Connection
from .audit import Actor

RUN_TTL = 15 * 60  # seconds a run's state is kept after its last change
STALLED_AFTER = 10  # seconds queued with no worker taking it: the page asks whether one runs


def _key(run_id: str) -> str:
    return f"test-run:{run_id}"


def valid_run_id(run_id: str) -> bool:
    return len(run_id) == 32 and all(c in "0123456789abcdef" for c in run_id)


def test_run_start(*, connection: Connection, actor: Actor) -> str:
    """Queue the connection's test; return the run id. Raises the broker's error if it cannot be queued."""
    from ..tasks import run_test

    run_id = uuid.uuid4().hex
    cache.set(_key(run_id), {"state": "queued", "connection_id": connection.pk, "queued_at": time.time()}, RUN_TTL)
    try:
        run_test.apply_async(args=[connection.pk, actor.label, run_id], task_id=run_id)
    except BaseException:
        cache.delete(_key(run_id))
        raise
    return run_id


def test_run_update(run_id: str, **fields) -> None:
    """Called by the task: running (started_at), then done (ok, or timed_out / gone)."""
    if not run_id:
        return
    state = cache.get(_key(run_id)) or {"queued_at": time.time()}
    state.update(fields)
    cache.set(_key(run_id), state, RUN_TTL)


def test_run_status(*, run_id: str, connection: Connection) -> dict | None:
    """The run's state for the page (None: unknown, expired, or another connection's), with elapsed
    seconds and whether it looks stalled (queued for long, or running past the hard time limit)."""
    from ..tasks import TEST_TIME_LIMIT

    state = cache.get(_key(run_id)) if valid_run_id(run_id) else None
    if not state or state.get("connection_id") != connection.pk:
        return None
    now = time.time()
    state["elapsed"] = int(now - state.get("queued_at", now))
    state["no_worker"] = state["state"] == "queued" and state["elapsed"] >= STALLED_AFTER
    state["lost"] = state["state"] == "running" and now - state.get("started_at", now) > TEST_TIME_LIMIT + 10
    state["time_limit"] = TEST_TIME_LIMIT
    return state
