"""When a connection refreshes: when the next proactive refresh is due, and which connections
are due now (the refresh_due beat task queues them). Whether it refreshes at all (from
non-secret metadata, so pages may ask) is a read: selectors/rotation.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from ..models import Connection, Credential, Health, RotationState
from ..providers import PROVIDERS
from ..selectors.rotation import supports_refresh
from ..services.vault import active_credential

# Refresh a session this long before it expires (at most half its lifetime).
SESSION_MARGIN_SECONDS = 300

# A proactive refresh that failed is tried again after this long.
RETRY_AFTER_FAILURE = 300


def _session_expiry(connection: Connection, credential: Credential) -> float | None:
    """Unix time the credential's session expires (TeleTracker bearer sessions), from its meta."""
    meta = credential.meta or {}
    value = meta.get("session_expires_at")
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        try:
            return datetime.fromisoformat(str(value)).timestamp()
        except ValueError:
            return None


def next_refresh_time(connection: Connection, credential: Credential | None) -> datetime | None:
    """The refresh interval after the credential became active, or before its session expires."""
    if credential is None:
        return None
    candidates = []
    base = credential.activated_at or credential.created_at or timezone.now()
    if connection.refresh_interval:
        candidates.append(base + timedelta(seconds=connection.refresh_interval))
    expires = _session_expiry(connection, credential)
    if expires is not None:
        lifetime = max(0.0, expires - base.timestamp())
        margin = min(SESSION_MARGIN_SECONDS, lifetime / 2)
        candidates.append(datetime.fromtimestamp(expires - margin, tz=base.tzinfo))
    return min(candidates) if candidates else None


def connections_due_for_refresh(*, now: datetime | None = None) -> list[int]:
    """Ids of enabled rescind-on-refresh connections whose refresh is due and that nobody is rotating."""
    now = now or timezone.now()
    keys = [key for key, p in PROVIDERS.items() if p.rescinds_on_refresh]
    due = []
    candidates = Connection.objects.filter(provider__in=keys, enabled=True).exclude(
        health=Health.NEEDS_ATTENTION).filter(Q(rotation_claim__isnull=True) | Q(rotation_lease_until__lt=now))
    for connection in candidates:
        credential = active_credential(connection)
        if credential is None or not supports_refresh(connection, credential):
            continue
        when = next_refresh_time(connection, credential)
        if when is None or when > now:
            continue
        # After a refused refresh, wait before asking the vendor again (not every beat tick).
        if connection.rotations.filter(state=RotationState.FAILED,
                                       started_at__gt=now - timedelta(seconds=RETRY_AFTER_FAILURE)).exists():
            continue
        due.append(connection.pk)
    return due
