"""What the Celery tasks of rotation call (connections/tasks.py holds only thin wrappers).

The page enqueues a rotation with an attempt id chosen up front, so it can poll that id's
status before the worker has written the journal row; outcomes that write no row (busy,
unsupported) are left in the cache under the same id. No secret goes through the broker
or the cache.
"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.utils import timezone

from ..models import Connection
from ..services.audit import Actor
from ..taskqueue import queue_on_commit
from .refresh import rotate

OUTCOME_TTL = 3600


def _key(attempt_id: str) -> str:
    return f"rotation:outcome:{attempt_id}"


def queued_at(attempt_id: str):
    return (cache.get(_key(attempt_id)) or {}).get("queued_at")


def cached_outcome(attempt_id: str) -> dict | None:
    data = cache.get(_key(attempt_id)) or {}
    return data.get("outcome")


def enqueue_rotation(*, connection: Connection, actor: Actor) -> str:
    """Queue a refresh rotation after the current transaction commits; returns the attempt id to poll."""
    attempt_id = str(uuid.uuid4())
    cache.set(_key(attempt_id), {"queued_at": timezone.now().isoformat(), "connection": connection.name},
              OUTCOME_TTL)
    user_id = actor.user.pk if actor.user is not None else None
    queue_on_commit("connections.tasks.rotate_credentials", connection.pk, attempt_id=attempt_id, user_id=user_id,
                    actor_label=actor.label, via=actor.via, ip=actor.ip)
    return attempt_id


def run_rotation(*, connection_id: int, attempt_id: str = "", user_id: int | None = None, actor_label: str = "",
                 via: str = "user", ip: str | None = None, task_id: str = "") -> dict | None:
    from django.contrib.auth import get_user_model

    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return None
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    actor = Actor(user=user, label=actor_label or (user.get_username() if user else "worker"), via=via, ip=ip)
    outcome = rotate(connection=connection, actor=actor, task_id=task_id, attempt_id=attempt_id or None)
    data = outcome.as_dict()
    if attempt_id:
        previous = cache.get(_key(attempt_id)) or {}
        cache.set(_key(attempt_id), {**previous, "outcome": data}, OUTCOME_TTL)
    return data
