"""The Celery app. Tasks live in connections/tasks.py (autodiscovered); beat uses
django-celery-beat's database scheduler, so schedules are rows, not code."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="switchboard.ping")
def ping(nonce: str) -> None:
    """A trivial task: proves a worker consumes from the broker by leaving a mark in the shared cache."""
    from django.core.cache import cache

    cache.set(f"ping:{nonce}", "pong", timeout=300)
