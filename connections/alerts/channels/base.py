"""What every alert channel declares (the registry is channels/__init__.py)."""

from __future__ import annotations

from ...models import AlertChannel, AlertDelivery


class DeliveryFailed(Exception):
    """A delivery that did not go out; Celery retries it (connections/tasks.py)."""


class Channel:
    kind: str = ""
    label: str = ""

    def clean(self, target: str) -> tuple[dict, str]:
        """(config stored encrypted, the part of the target safe to show); ValidationError on bad input."""
        raise NotImplementedError

    def send(self, delivery: AlertDelivery) -> None:
        """Send one delivery; raise on failure (DeliveryFailed with a safe message where possible)."""
        raise NotImplementedError

    def safe_error(self, exc: Exception, channel: AlertChannel) -> str:
        """What the alerts page and the worker log may show of a failure."""
        if isinstance(exc, DeliveryFailed):
            return str(exc)[:1000]
        return f"{type(exc).__name__}: {exc}"[:1000]

    @staticmethod
    def payload(delivery: AlertDelivery) -> dict:
        """The facts of a delivery, for channels that send structured data."""
        event = delivery.event
        return {
            "subject": delivery.subject,
            "message": delivery.body,
            "connection": event.connection.name if event else None,
            "condition": event.condition if event else "test",
            "transition": event.transition if event else "test",
            "at": (event.at if event else delivery.created_at).isoformat(),
        }
