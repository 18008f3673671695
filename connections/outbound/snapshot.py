"""The connection's denormalised rate-limit snapshot (the pages' headroom), from each answer."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from ..models import Connection
from ..providers.http import RateLimitInfo

_snapshot_written: dict[int, float] = {}
_snapshot_urgent: set[int] = set()  # connections whose last written snapshot was a 429, a block or none left
SNAPSHOT_EVERY = 1.0  # seconds: the page's headroom does not need every response's figure


def update_snapshot(connection: Connection, rate: RateLimitInfo, blocked_until: float | None, *,
                     throttled: bool = False) -> None:
    """Denormalise the latest rate-limit signals onto the connection (at most once a second,
    unless something an operator must see happened: a 429, a block, or the budget running out)."""
    urgent = throttled or blocked_until is not None or rate.remaining == 0 or rate.retry_after is not None
    if not rate and not urgent:
        return
    now = time.monotonic()
    recovering = connection.pk in _snapshot_urgent  # the page says "none left": correct it at once
    if not urgent and not recovering and now - _snapshot_written.get(connection.pk, -1e9) < SNAPSHOT_EVERY:
        return
    _snapshot_written[connection.pk] = now
    (_snapshot_urgent.add if urgent else _snapshot_urgent.discard)(connection.pk)
    fields: dict[str, Any] = {"rl_observed_at": timezone.now()}
    if rate.limit is not None:
        fields["rl_limit"] = rate.limit
    if rate.remaining is not None:
        fields["rl_remaining"] = rate.remaining
    if rate.reset_at is not None:
        fields["rl_reset_at"] = datetime.fromtimestamp(rate.reset_at, UTC)
    if rate.bucket:
        fields["rl_bucket"] = rate.bucket
    if throttled and rate.remaining is None:
        # A 429 without rate headers (VENDORS.md edge case 4) still says: nothing left now. Keep no
        # older reset either, or the page would count the budget as back once that time passed.
        fields["rl_remaining"] = 0
        if rate.reset_at is None:
            fields["rl_reset_at"] = None
    if blocked_until is not None:
        fields["blocked_until"] = datetime.fromtimestamp(blocked_until, UTC)
    Connection.objects.filter(pk=connection.pk).update(**fields)
    for name, value in fields.items():
        setattr(connection, name, value)
