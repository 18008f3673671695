"""Queue a Celery task by its name once the current transaction commits.

connections/tasks.py defines the tasks and imports the services, rotation and alerts they run;
those lower layers therefore never import tasks.py back (import-linter checks it). They name
the task instead, and Celery's registry finds it: the app config imports tasks.py at start-up
(apps.py), so every process (web, worker, CLI) has it registered.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction


def queue_on_commit(task_name: str, *args, **kwargs) -> None:
    """`task.delay(*args, **kwargs)` after the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(lambda: current_app.tasks[task_name].delay(*args, **kwargs))
