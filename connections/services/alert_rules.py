"""Saving a set of alert rules (the rules form on the alerts page and on a connection's page)."""

from __future__ import annotations

from django.db import transaction

from .. import alerts
from ..models import AlertRule, Connection
from .audit import Actor


def alert_rules_save(*, connection: Connection | None, rules: list[dict], actor: Actor) -> None:
    """Every rule of the form, in one transaction. On a connection, a rule with `follow_default`
    drops the connection's own rule for that condition (the default applies again)."""
    with transaction.atomic():
        for rule in rules:
            if connection is not None and rule["follow_default"]:
                AlertRule.objects.filter(connection=connection, condition=rule["condition"]).delete()
                continue
            alerts.rule_set(connection=connection, condition=rule["condition"], enabled=rule["enabled"],
                            threshold=rule["threshold"], cooldown_minutes=rule["cooldown_minutes"], actor=actor)
