"""Queries the code asks more than once, as QuerySet methods (declared on the models with
QuerySet.as_manager(), so they chain and work on related managers: connection.credentials.active())."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from . import credgen
from .choices import CredentialState, RotationKind, RotationState

# The rotation lease must outlive the slowest refresh call (connect + read timeouts, a throttle
# wait) plus the commit; a dead worker's claim is taken over once it expires.
DEFAULT_LEASE_SECONDS = 180


def lease_seconds() -> int:
    return int(getattr(settings, "ROTATION_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


class ConnectionQuerySet(models.QuerySet):
    def claim_rotation(self, connection_id: int, *, now: datetime | None = None) -> uuid.UUID | None:
        """Take the connection's rotation claim (free, or its lease expired); None when held.

        One UPDATE ... WHERE, committed at once: two processes (or machines) racing here can
        never both win, whatever their isolation level, because the row lock serialises them
        and the loser re-evaluates the WHERE clause against the winner's committed row. The
        rotations take it (rotation/core.py), and so does archiving (nothing rotates an archive).
        """
        now = now or timezone.now()
        claim = uuid.uuid4()
        won = self.filter(pk=connection_id).filter(
            Q(rotation_claim__isnull=True) | Q(rotation_lease_until__lt=now)
        ).update(rotation_claim=claim, rotation_lease_until=now + timedelta(seconds=lease_seconds()))
        return claim if won else None


class LiveConnections(models.Manager.from_queryset(ConnectionQuerySet)):
    """Connection.objects: connections in use. Archived ones (kept for their history) are only in
    Connection.with_archived, so every list, schedule, batch and sender leaves them out."""

    def get_queryset(self):
        return super().get_queryset().filter(archived_at__isnull=True)


class CredentialQuerySet(models.QuerySet):
    """Every write through it moves the credential generations of the connections it touches
    (connections/credgen.py), so no process keeps a stale active credential; save() and delete() of an
    instance are covered by signals (models/__init__.py)."""

    def active(self) -> CredentialQuerySet:
        """The active credential(s): at most one per connection (a partial unique constraint)."""
        return self.filter(state=CredentialState.ACTIVE)

    def _touched(self, kwargs=None) -> set:
        """The connections whose credentials this queryset (and a new connection in `kwargs`) holds."""
        rows = self.order_by()
        rows.query.select_for_update = False  # PostgreSQL refuses FOR UPDATE with DISTINCT
        ids = set(rows.values_list("connection_id", flat=True).distinct())
        moved = (kwargs or {}).get("connection_id", (kwargs or {}).get("connection"))
        if moved is not None:
            ids.add(getattr(moved, "pk", moved))
        return ids

    def update(self, **kwargs) -> int:
        if credgen.generations() is None:
            return super().update(**kwargs)
        with credgen.writing(self._touched(kwargs), self.db):
            return super().update(**kwargs)

    def delete(self):
        if credgen.generations() is None:
            return super().delete()
        with credgen.writing(self._touched(), self.db):
            return super().delete()

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        with credgen.writing({obj.connection_id for obj in objs}, self.db):
            return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        with credgen.writing({obj.connection_id for obj in objs}, self.db):
            return super().bulk_update(objs, fields, *args, **kwargs)


class RotationAttemptQuerySet(models.QuerySet):
    def unsettled(self) -> RotationAttemptQuerySet:
        """Attempts still `started`: running, or left by a worker that died (the reconciler settles them)."""
        return self.filter(state=RotationState.STARTED)

    def lost_refreshes(self, credential) -> RotationAttemptQuerySet:
        """Refreshes made with this credential whose answer was lost (outcome unknown)."""
        return self.filter(old_credential=credential, kind=RotationKind.REFRESH, state=RotationState.OUTCOME_UNKNOWN)

    def newest_first(self) -> RotationAttemptQuerySet:
        return self.order_by("-started_at")


class MaintenanceWindowQuerySet(models.QuerySet):
    def in_force(self, now: datetime | None = None) -> MaintenanceWindowQuerySet:
        """Windows silencing alerts at `now`."""
        now = now or timezone.now()
        return self.filter(starts_at__lte=now, ends_at__gt=now)

    def not_ended(self, now: datetime | None = None) -> MaintenanceWindowQuerySet:
        """Windows in force or still to come."""
        return self.filter(ends_at__gt=now or timezone.now())


class AlertRuleQuerySet(models.QuerySet):
    def in_force_for(self, connections=None) -> AlertRuleQuerySet:
        """The default rules (connection=None), with the own rules of `connections` (a list, a
        queryset or one connection) where given."""
        if connections is None:
            return self.filter(connection=None)
        if isinstance(connections, models.Model):
            connections = [connections]
        return self.filter(Q(connection=None) | Q(connection__in=connections))


class AlertDeliveryQuerySet(models.QuerySet):
    def channel_tests(self) -> AlertDeliveryQuerySet:
        """Deliveries of "Send a test alert" (no alert event behind them)."""
        return self.filter(event=None)
