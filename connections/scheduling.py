"""Beat schedules as django-celery-beat rows: one periodic test per connection.

The task carries only the connection's id; the worker loads the secret at send time.
"""

from __future__ import annotations

import json

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from .models import Connection

TEST_TASK = "connections.tasks.scheduled_test"


def _task_name(name: str) -> str:
    return f"connection-test:{name}"


def sync_connection_schedule(connection_id: int) -> None:
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return
    name = _task_name(connection.name)
    if not connection.enabled or not connection.test_interval:
        PeriodicTask.objects.filter(name=name).delete()
        return
    interval, _ = IntervalSchedule.objects.get_or_create(every=connection.test_interval,
                                                         period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={"task": TEST_TASK, "interval": interval, "args": json.dumps([connection.pk]), "enabled": True},
    )


def remove_connection_schedule(name: str) -> None:
    PeriodicTask.objects.filter(name=_task_name(name)).delete()


# Periodic housekeeping: task name -> (seconds between runs, description). Extend here.
PERIODIC_TASKS: dict[str, tuple[int, str]] = {
    # Request log retention (connections/retention.py): daily, in batches of 5,000 rows.
    "connections.tasks.purge_request_logs": (24 * 3600, "request-log-retention"),
    # Partitions ahead, expired partitions dropped, old rollups deleted (retention.maintain_request_log).
    "connections.tasks.maintain_request_log": (3600, "request-log-maintenance"),
    # Alerts (connections/alerts/): compare conditions with their state, alert on transitions.
    "connections.tasks.evaluate_alerts": (30, "alert-evaluation"),
    # Rotation (connections/rotation/): settle what dead workers left, and proactive refreshes.
    "connections.tasks.reconcile_rotations": (60, "rotation-reconciler"),
    "connections.tasks.refresh_due": (60, "proactive-refresh"),
}


def ensure_periodic_tasks() -> None:
    """Create or update the beat rows for housekeeping tasks and every connection's schedule."""
    for task, (every, description) in PERIODIC_TASKS.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.update_or_create(
            name=description, defaults={"task": task, "interval": interval, "enabled": True}
        )
    for connection_id in Connection.objects.values_list("pk", flat=True):
        sync_connection_schedule(connection_id)
