"""Maintenance windows: while one is open for a connection, its alert transitions are recorded
but not sent (the event says "maintenance window")."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils import timezone

from ..models import Connection, MaintenanceWindow
from ..services.audit import Actor, audit


def in_maintenance(connection_ids: list[int], now: dt.datetime) -> set[int]:
    return set(MaintenanceWindow.objects.in_force(now).filter(connection_id__in=connection_ids)
               .values_list("connection_id", flat=True))


def maintenance_create(*, connection: Connection, starts_at: dt.datetime, ends_at: dt.datetime, reason: str,
                       actor: Actor) -> MaintenanceWindow:
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "must be after the start"})
    if ends_at - starts_at > dt.timedelta(days=14):
        raise ValidationError({"ends_at": "a maintenance window lasts at most 14 days"})
    window = MaintenanceWindow.objects.create(connection=connection, starts_at=starts_at, ends_at=ends_at,
                                              reason=reason.strip()[:300], created_by_label=actor.label)
    audit(actor=actor, action="alert.maintenance", connection=connection,
          details={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(), "reason": window.reason})
    return window


def maintenance_end(*, window: MaintenanceWindow, actor: Actor) -> None:
    now = timezone.now()
    if window.ends_at > now:
        window.ends_at = max(now, window.starts_at)
        window.save(update_fields=["ends_at"])
        audit(actor=actor, action="alert.maintenance.end", connection=window.connection,
              details={"window": window.pk})
