"""Connections, credentials and the audit trail."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from ..models import (
    AuditEvent,
    Connection,
    Credential,
    CredentialState,
)
from .alerts import connection_alerts

AUDIT_PAGE_SIZE = 50
# Credential.meta["retired_because"] of a secret retired because its connection's host changed
# (services/vault.py writes it).
HOST_CHANGED = "host_changed"


def _active_credentials() -> Prefetch:
    return Prefetch("credentials", queryset=Credential.objects.active()
                    .select_related("created_by").defer("secret"), to_attr="active_credentials")


def connection_list() -> QuerySet[Connection]:
    return Connection.objects.order_by("name").prefetch_related(_active_credentials())


def active_of(connection: Connection) -> Credential | None:
    creds = getattr(connection, "active_credentials", None)
    if creds is None:
        return connection.credentials.active().defer("secret").first()
    return creds[0] if creds else None


def connection_detail(*, connection: Connection) -> dict:
    versions = list(connection.credentials.defer("secret").select_related("created_by")
                    .order_by("-version")[:20])
    active = next((c for c in versions if c.state == CredentialState.ACTIVE), None)
    audit = list(connection.audit_events.order_by("-at", "-id")[:10])
    provider = connection.provider_obj
    return {
        "connection": connection,
        "provider": provider,
        "active_credential": active,
        "host_retired": None if active else retired_for_host_change(connection),
        "versions": versions,
        "audit_events": audit,
        "test_statement": provider.describe_test(connection.effective_options()),
        **connection_alerts(connection=connection),
        "options": connection.effective_options(),
        "can_connect": provider.supports_connect(connection.effective_options()),
    }


def archived_detail(*, connection: Connection) -> dict:
    """The read-only page of an archived connection: what it was, its secrets' versions (retired),
    its latest requests and audit trail, with links to the whole history."""
    return {
        "connection": connection,
        "provider": connection.provider_obj,
        "versions": list(connection.credentials.defer("secret").order_by("-version")[:20]),
        "audit_events": list(connection.audit_events.order_by("-at", "-id")[:10]),
        "recent_requests": list(connection.request_logs.order_by("-started_at", "-id")
                                .only("id", "started_at", "operation", "method", "path", "status_code", "outcome")[:10]),
        "options": connection.effective_options(),
    }


# What runs rather than changes anything: every scheduled test writes one, so at 3 a.m. the one
# secret replacement being looked for sits among hundreds of these.
NOT_CHANGES = ("connection.test", "test_all", "connection.call")


def audit_page(*, before: str | None = None, connection: str | None = None, who: str = "",
               changes_only: bool = False) -> dict:
    """Newest first, keyset-paginated on (at, id) through the `before` cursor "<id>"."""
    qs = AuditEvent.objects.select_related("connection").order_by("-at", "-id")
    if connection:
        qs = qs.filter(connection_name=connection)
    if who:
        qs = qs.filter(actor_label=who)
    if changes_only:
        qs = qs.exclude(action__in=NOT_CHANGES)
    if before:
        try:
            cursor = AuditEvent.objects.filter(pk=int(before)).values_list("at", "id").first()
        except (TypeError, ValueError):
            cursor = None
        if cursor:
            at, pk = cursor
            qs = qs.filter(at__lt=at) | qs.filter(at=at, id__lt=pk)
    rows = list(qs[: AUDIT_PAGE_SIZE + 1])
    more = len(rows) > AUDIT_PAGE_SIZE
    rows = rows[:AUDIT_PAGE_SIZE]
    return {"events": rows, "next_before": rows[-1].pk if more and rows else None,
            "connection_filter": connection or "", "who_filter": who, "changes_only": changes_only}


def retired_for_host_change(connection: Connection) -> Credential | None:
    """The secret retired by the latest host change, while no new secret has been entered since."""
    latest = connection.credentials.defer("secret").order_by("-version").first()
    if latest is not None and latest.meta.get("retired_because") == HOST_CHANGED:
        return latest
    return None
