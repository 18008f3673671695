"""Queries the code asks more than once, as QuerySet methods (declared on the models with
QuerySet.as_manager(), so they chain and work on related managers: connection.credentials.active())."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .choices import CredentialState, RotationKind, RotationState


class CredentialQuerySet(models.QuerySet):
    def active(self) -> CredentialQuerySet:
        """The active credential(s): at most one per connection (a partial unique constraint)."""
        return self.filter(state=CredentialState.ACTIVE)


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
