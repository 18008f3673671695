"""Alerts: what fires now, the history, channels, rules in force and maintenance windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.shortcuts import get_object_or_404
from django.utils import timezone

from ..models import (
    AlertChannel,
    AlertCondition,
    AlertDelivery,
    AlertEvent,
    AlertRule,
    AlertState,
    Connection,
    MaintenanceWindow,
)

EVENTS_SHOWN = 100


@dataclass
class RuleRow:
    """One condition: the default rule, this connection's own rule where it has one, and the one in force."""

    condition: str
    label: str
    default: AlertRule | None
    own: AlertRule | None

    @property
    def rule(self) -> AlertRule | None:
        return self.own or self.default


def alert_rule_rows(connection: Connection | None = None) -> list[RuleRow]:
    """One row per condition, in the conditions' order. One query."""
    rules = list(AlertRule.objects.in_force_for(connection))
    defaults = {r.condition: r for r in rules if r.connection_id is None}
    own = {r.condition: r for r in rules if r.connection_id is not None}
    return [RuleRow(condition=value, label=label, default=defaults.get(value), own=own.get(value))
            for value, label in AlertCondition.choices]


def connection_alerts(*, connection: Connection) -> dict:
    """What the connection page shows about alerts: history, rules in force, maintenance."""
    return {
        "alert_events": list(connection.alert_events.prefetch_related("deliveries__channel").order_by("-at", "-id")[:10]),
        "alert_rules": alert_rule_rows(connection),
        "maintenance_now": connection.maintenance_windows.in_force().first(),
    }


def firing_alerts(*, now: datetime | None = None) -> list[AlertState]:
    """What is firing now, apart from the history: every active alert state, newest first, each
    marked `silenced` when a maintenance window is in force for its connection. Two queries."""
    now = now or timezone.now()
    states = list(AlertState.objects.filter(active=True).select_related("connection").order_by("-since", "-id"))
    silenced = set(MaintenanceWindow.objects.in_force(now).filter(connection__in=[s.connection_id for s in states])
                   .values_list("connection_id", flat=True))
    for s in states:
        s.silenced = s.connection_id in silenced
    return states


def alerts_page() -> dict:
    """The alerts page: firing now, the history, channels, test deliveries, default rules, maintenance."""
    return {
        "firing": firing_alerts(),
        "events": list(AlertEvent.objects.select_related("connection").prefetch_related("deliveries__channel")
                       .order_by("-at", "-id")[:EVENTS_SHOWN]),
        "channels": AlertChannel.objects.order_by("name"),
        "recent_tests": AlertDelivery.objects.channel_tests().select_related("channel")[:10],
        "rules": alert_rule_rows(),
        "maintenance": MaintenanceWindow.objects.not_ended().select_related("connection"),
    }


def alert_channel(*, pk: int) -> AlertChannel:
    """One channel, or 404."""
    return get_object_or_404(AlertChannel, pk=pk)


def maintenance_window(*, connection: Connection, pk: int) -> MaintenanceWindow:
    """One of the connection's maintenance windows, or 404."""
    return get_object_or_404(MaintenanceWindow, pk=pk, connection=connection)
