"""Alerts (connections/alerts/): rules, channels, maintenance windows, each connection's alert
state, the events and their deliveries."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..choices import AlertCondition, AlertTransition, ChannelKind, DeliveryState
from ..crypto import EncryptedJSONField
from ..querysets import AlertDeliveryQuerySet, AlertRuleQuerySet, MaintenanceWindowQuerySet
from .core import Connection


class AlertRule(models.Model):
    """Whether and how a condition alerts. connection=None is the default for every connection;
    a rule for one connection overrides it."""

    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="alert_rules")
    condition = models.CharField(max_length=30, choices=AlertCondition.choices)
    enabled = models.BooleanField(default=True)
    # headroom_low: percent of the limit remaining; credential_expiring: hours before expiry.
    threshold = models.FloatField(null=True, blank=True)
    cooldown_minutes = models.PositiveIntegerField(default=30)

    objects = AlertRuleQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "condition"], name="one_rule_per_condition"),
            models.UniqueConstraint(fields=["condition"], condition=Q(connection__isnull=True),
                                    name="one_default_rule_per_condition"),
        ]

    def __str__(self) -> str:
        return f"{self.connection or 'default'}: {self.condition}"


class AlertChannel(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    # E-mail: {"to": [...]}; webhook: {"url": ...}. Encrypted: a webhook URL is itself a secret.
    config = EncryptedJSONField()
    # Safe to show: the e-mail addresses or the webhook's host.
    display_target = models.CharField(max_length=300)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_label = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MaintenanceWindow(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="maintenance_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)
    created_by_label = models.CharField(max_length=150, blank=True)

    objects = MaintenanceWindowQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["connection", "ends_at"], name="maint_conn_ends")]

    def __str__(self) -> str:
        return f"{self.connection} {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M}"


class AlertState(models.Model):
    """Whether a condition is currently on for a connection: alerts fire on transitions only."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="alert_states")
    condition = models.CharField(max_length=30, choices=AlertCondition.choices)
    active = models.BooleanField(default=False)
    since = models.DateTimeField(default=timezone.now)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "condition"], name="one_state_per_condition")]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.condition} {'on' if self.active else 'off'}"


class AlertEvent(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="alert_events")
    condition = models.CharField(max_length=30, choices=AlertCondition.choices)
    transition = models.CharField(max_length=10, choices=AlertTransition.choices)
    at = models.DateTimeField(default=timezone.now)
    message = models.TextField()
    # Why nothing was sent, if so: maintenance window, cooldown, rule disabled.
    suppressed = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["-at", "-id"], name="alert_event_recent"),
                   models.Index(fields=["connection", "-at"], name="alert_event_conn")]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.condition} {self.transition}"


class AlertDelivery(models.Model):
    event = models.ForeignKey(AlertEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = AlertDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.channel} {self.state}"
