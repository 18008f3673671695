"""Alert deliveries: one AlertDelivery per (event, channel), sent by Celery with retries; a
delivery that keeps failing is marked failed and shown on the alerts page. The channels
themselves (what a target looks like, how to send) are one module each in channels/.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import AlertChannel, AlertDelivery, AlertEvent
from ..services.audit import Actor, audit
from ..taskqueue import queue_on_commit
from .channels import DeliveryFailed, channel_kind

log = logging.getLogger(__name__)


def queue(event: AlertEvent | None, *, subject: str, channels=None, body: str | None = None) -> list[AlertDelivery]:
    deliveries = [
        AlertDelivery.objects.create(event=event, channel=channel, subject=subject,
                                     body=body if body is not None else event.message)
        for channel in (channels if channels is not None else AlertChannel.objects.filter(enabled=True))
    ]
    for delivery in deliveries:
        queue_on_commit("connections.tasks.deliver_alert", delivery.pk)
    return deliveries


def channel_create(*, name: str, kind: str, target: str, actor: Actor) -> AlertChannel:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "this field is required"})
    if AlertChannel.objects.filter(name=name).exists():
        raise ValidationError({"name": f"a channel named {name!r} already exists"})
    config, display = channel_kind(kind).clean(target)
    channel = AlertChannel.objects.create(name=name, kind=kind, config=config, display_target=display,
                                          created_by_label=actor.label)
    audit(actor=actor, action="alert.channel.create", details={"channel": name, "kind": kind, "target": display})
    return channel


def channel_delete(*, channel: AlertChannel, actor: Actor) -> None:
    audit(actor=actor, action="alert.channel.delete", details={"channel": channel.name, "kind": channel.kind})
    channel.delete()


def channel_test(*, channel: AlertChannel, actor: Actor) -> AlertDelivery:
    """Queue a test alert to one channel; its outcome shows on the alerts page like any delivery."""
    with transaction.atomic():
        [delivery] = queue(None, subject="[Switchboard] Test alert", channels=[channel],
                            body=f"Test alert from Switchboard, sent by {actor.label}. If you read this, "
                                 f"the channel {channel.name!r} works.")
        audit(actor=actor, action="alert.channel.test", details={"channel": channel.name})
    return delivery


def deliver(delivery_id: int, *, final_attempt: bool) -> str:
    """Send one delivery. Raises DeliveryFailed (for Celery to retry) unless this was the last try."""
    delivery = AlertDelivery.objects.select_related("channel", "event", "event__connection").get(pk=delivery_id)
    if delivery.state == "sent":
        return "sent"
    delivery.attempts += 1
    try:
        channel_kind(delivery.channel.kind).send(delivery)
    except Exception as exc:  # any failure of the channel: record it, never lose it silently
        delivery.last_error = channel_kind(delivery.channel.kind).safe_error(exc, delivery.channel)
        delivery.state = "failed" if final_attempt else "pending"
        delivery.save(update_fields=["attempts", "last_error", "state"])
        log.warning("alert delivery %s via %s failed (attempt %s): %s", delivery.pk, delivery.channel.name,
                    delivery.attempts, delivery.last_error)
        if final_attempt:
            return "failed"
        raise DeliveryFailed(delivery.last_error) from None
    delivery.state = "sent"
    delivery.sent_at = timezone.now()
    delivery.last_error = ""
    delivery.save(update_fields=["attempts", "state", "sent_at", "last_error"])
    return "sent"
