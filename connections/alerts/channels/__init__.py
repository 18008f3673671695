"""The alert channel registry: one module per channel kind, one line each below.

A channel knows three things: how to check the target an admin typed (`clean`: the config
stored encrypted, and the part safe to show), how to send one delivery (`send`), and what of
a failure may be shown (`safe_error`). Adding Slack, Microsoft Teams or PagerDuty is one module
here and one line in CHANNELS (docs/alerts.md has the checklist).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from .base import Channel, DeliveryFailed
from .email import EmailChannel
from .webhook import WebhookChannel

CHANNELS: dict[str, Channel] = {
    EmailChannel.kind: EmailChannel(),
    WebhookChannel.kind: WebhookChannel(),
}

__all__ = ["CHANNELS", "Channel", "DeliveryFailed", "channel_kind"]


def channel_kind(kind: str) -> Channel:
    try:
        return CHANNELS[kind]
    except KeyError:
        raise ValidationError({"kind": "choose " + " or ".join(c.label for c in CHANNELS.values())}) from None
