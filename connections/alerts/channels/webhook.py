"""Webhook alerts: a JSON POST (Slack-compatible `text`) through the one outbound path, so the
guard, address pinning and "no redirects" of vendor calls apply here too (outbound/transport.py).
The URL itself is a secret (Slack's carries the token): only its scheme and host are shown."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from ...models import AlertChannel, AlertDelivery
from ...outbound import guard, transport
from .base import Channel, DeliveryFailed

WEBHOOK_TIMEOUT = (5, 10)


class WebhookChannel(Channel):
    kind = "webhook"
    label = "webhook"

    def clean(self, target: str) -> tuple[dict, str]:
        target = (target or "").strip()
        parsed = guard.parse(target)
        if isinstance(parsed, guard.Refusal):
            raise ValidationError({"target": "give the webhook's full http(s) URL, e.g. https://hooks.slack.com/services/…; "
                                         + parsed.message})
        problem = guard.saved_url_problem(target)
        if problem:
            raise ValidationError({"target": problem})
        return {"url": target}, guard.display_url(parsed)

    @sensitive_variables()
    def send(self, delivery: AlertDelivery) -> None:
        config = delivery.channel.config.reveal()
        # Slack-compatible: `text` is what Slack and most chat webhooks display.
        payload = {"text": f"*{delivery.subject}*\n{delivery.body}", **self.payload(delivery)}
        status = transport.post(config["url"], data=json.dumps(payload).encode(), timeout=WEBHOOK_TIMEOUT,
                                headers={"Content-Type": "application/json"})
        if not 200 <= status < 300:
            raise DeliveryFailed(f"the webhook at {delivery.channel.display_target} answered HTTP {status}")

    def safe_error(self, exc: Exception, channel: AlertChannel) -> str:
        """Our words only (category + scheme://host), never a library's text: it may hold the URL."""
        if isinstance(exc, transport.TransportError | DeliveryFailed):
            return str(exc)[:1000]
        return f"{type(exc).__name__} while sending to {channel.display_target}"
