"""Celery tasks: thin wrappers that take ids, import a service inside the task and call it.

Arguments never carry a secret: the worker reads the active credential at send time.
"""

from __future__ import annotations

import time

from celery import shared_task

from .services.test_runs import TEST_SOFT_TIME_LIMIT, TEST_TIME_LIMIT  # re-exported: the tasks' limits


@shared_task(bind=True, name="connections.tasks.scheduled_test", ignore_result=True,
             soft_time_limit=TEST_SOFT_TIME_LIMIT, time_limit=TEST_TIME_LIMIT)
def scheduled_test(self, connection_id: int) -> dict:
    """The beat's periodic connection test (scheduling.py creates one per connection)."""
    from .services.testing import connection_scheduled_test

    outcome = connection_scheduled_test(connection_id=connection_id, task_id=self.request.id or "")
    return {"ran": outcome.ran, "reason": outcome.reason, "ok": outcome.ok}


@shared_task(bind=True, name="connections.tasks.run_test",
             soft_time_limit=TEST_SOFT_TIME_LIMIT, time_limit=TEST_TIME_LIMIT)
def run_test(self, connection_id: int, actor_label: str = "", run_id: str = "") -> dict | None:
    """An on-demand test queued from a page (services/test_runs.py follows it through `run_id`)."""
    from celery.exceptions import SoftTimeLimitExceeded

    from .models import Connection
    from .services.audit import Actor
    from .services.test_runs import test_run_update
    from .services.testing import connection_test

    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:  # archived since it was queued
        test_run_update(run_id, state="done", gone=True)
        return None
    test_run_update(run_id, state="running", started_at=time.time())
    actor = Actor(label=actor_label or "worker", via="user")
    try:
        summary = connection_test(connection=connection, actor=actor, task_id=self.request.id or "").summary()
    except SoftTimeLimitExceeded:
        test_run_update(run_id, state="done", timed_out=True)
        return None
    except BaseException:
        test_run_update(run_id, state="done", crashed=True)
        raise
    test_run_update(run_id, state="done", ok=summary["ok"])
    return summary


@shared_task(bind=True, name="connections.tasks.run_test_in_batch", ignore_result=True,
             soft_time_limit=TEST_SOFT_TIME_LIMIT, time_limit=TEST_TIME_LIMIT)
def run_test_in_batch(self, connection_id: int, batch_id: str, actor_label: str = "") -> None:
    """One connection's test inside a "Test all" batch (services/batch.py counts it)."""
    from .models import Connection
    from .services.audit import Actor
    from .services.batch import batch_record
    from .services.testing import connection_test

    ok = False
    try:
        connection = Connection.objects.filter(pk=connection_id).first()
        if connection is not None and connection.enabled:
            actor = Actor(label=actor_label or "worker", via="user")
            ok = connection_test(connection=connection, actor=actor, task_id=self.request.id or "").ok
    finally:  # counted even if the test raised, or the batch's progress bar never completes
        batch_record(batch_id=batch_id, connection_id=connection_id, ok=ok)


@shared_task(name="connections.tasks.purge_request_logs", ignore_result=True)
def purge_request_logs() -> int:
    """Request log retention (connections/retention.py), scheduled daily by scheduling.py."""
    from .retention import purge_request_logs as purge

    return purge().deleted


@shared_task(name="connections.tasks.maintain_request_log", ignore_result=True)
def maintain_request_log() -> dict:
    """Hourly: request log partitions ahead and expired ones dropped (PostgreSQL), old rollups deleted."""
    from .retention import maintain_request_log as maintain

    return maintain()


# ----------------------------------------------------------------------------- rotation
# Thin wrappers over connections/rotation/ (jobs.py). Ids only, never a secret. Rotations of one
# connection never run twice at once: rotate() takes the connection's claim in the database.
#
# The refresh is acknowledged when a worker takes it (acks_late=False), unlike every other task: it
# is never run again because its worker died. A redelivery would reuse the attempt id of the journal
# row the dead worker left `started`, and would meet that worker's claim until its lease ran out; the
# reconciler (reconcile_rotations, on the beat) settles that row by probing the old secret instead.


@shared_task(bind=True, name="connections.tasks.rotate_credentials", ignore_result=True, acks_late=False)
def rotate_credentials(self, connection_id: int, attempt_id: str = "", user_id: int | None = None,
                       actor_label: str = "", via: str = "user", ip: str | None = None) -> dict | None:
    """A refresh rotation: on demand from the page, or a proactive refresh (refresh_due)."""
    from .rotation.jobs import run_rotation

    return run_rotation(connection_id=connection_id, attempt_id=attempt_id, user_id=user_id,
                        actor_label=actor_label, via=via, ip=ip, task_id=self.request.id or "")


@shared_task(name="connections.tasks.refresh_due", ignore_result=True)
def refresh_due() -> list[int]:
    """Beat: queue a refresh for each connection whose refresh_interval elapsed or session nears expiry."""
    from .rotation.schedule import connections_due_for_refresh

    due = connections_due_for_refresh()
    for connection_id in due:
        rotate_credentials.delay(connection_id, actor_label="scheduler", via="schedule")
    return due


@shared_task(name="connections.tasks.reconcile_rotations", ignore_result=True)
def reconcile_rotations() -> int:
    """Beat: settle rotations a dead worker left `started`, import this machine's spool, clear stale claims."""
    from .rotation import reconcile_rotations as reconcile

    return len(reconcile())


# ----------------------------------------------------------------------------- alerts
# connections/alerts/: evaluate conditions on a beat, deliver each alert with retries.


@shared_task(name="connections.tasks.evaluate_alerts", ignore_result=True)
def evaluate_alerts() -> int:
    from .alerts import evaluate

    return len(evaluate())


@shared_task(bind=True, name="connections.tasks.deliver_alert", ignore_result=True, max_retries=4)
def deliver_alert(self, delivery_id: int) -> str:
    from .alerts import DeliveryFailed, deliver
    from .metrics import alert_delivered

    try:
        state = deliver(delivery_id, final_attempt=self.request.retries >= self.max_retries)
    except DeliveryFailed as exc:
        alert_delivered(delivery_id, "retry")
        # 10 s, 20 s, 40 s, 80 s: a flaky SMTP server or webhook gets a few minutes to recover.
        raise self.retry(exc=exc, countdown=10 * 2 ** self.request.retries) from None
    alert_delivered(delivery_id, state)
    return state
