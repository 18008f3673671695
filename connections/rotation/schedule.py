"""Whether and when a connection refreshes: how its credential rotates (from non-secret
metadata, so pages may ask), when the next proactive refresh is due, and which connections
are due now (the refresh_due beat task queues them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from ..models import Connection, Credential, Health, RotationState
from ..providers import PROVIDERS
from ..services.vault import active_credential

# Refresh a session this long before it expires (at most half its lifetime).
SESSION_MARGIN_SECONDS = 300

# A proactive refresh that failed is tried again after this long.
RETRY_AFTER_FAILURE = 300


def rotation_mode(credential: Credential | None) -> str:
    """"refresh", "login" (start a session) or "replace", from the credential's non-secret meta
    (providers' credential_meta(); kept current by vault, sessions and refresh): no decrypting."""
    if credential is None:
        return "replace"
    return (credential.meta or {}).get("rotation") or "replace"


def supports_refresh(connection: Connection, credential: Credential | None = None) -> bool:
    """Does `rotate` act at the vendor (a refresh, or a login that starts a session) rather than
    take a pasted secret? Reads metadata only, so pages may ask."""
    if not connection.provider_obj.rescinds_on_refresh:
        return False
    return rotation_mode(credential or active_credential(connection)) in ("refresh", "login")


def refresh_warning(connection: Connection) -> str:
    """What a refresh does, in the provider's words, for the confirmation before it runs."""
    provider = connection.provider_obj
    if rotation_mode(active_credential(connection)) == "login":
        how = provider.login_words.replace("logged in", "logs in").replace("asked", "asks")
        return (f"No {provider.label} session yet: this starts one ({how}) and stores it; Switchboard refreshes "
                "it before it expires.")
    return provider.refresh_warning or (f"{provider.label} invalidates the current secret the moment it answers; "
                    "Switchboard stores the new one at once.")


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
