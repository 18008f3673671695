"""Connections, credentials and the audit trail."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from ..models import (
    AuditEvent,
    Connection,
    Credential,
    CredentialState,
)

AUDIT_PAGE_SIZE = 50
# Credential.meta["retired_because"] of a secret retired because its connection's host changed
# (services/vault.py writes it).
HOST_CHANGED = "host_changed"


def _active_credentials() -> Prefetch:
    return Prefetch("credentials", queryset=Credential.objects.filter(state=CredentialState.ACTIVE)
                    .select_related("created_by").defer("secret"), to_attr="active_credentials")


def connection_list() -> QuerySet[Connection]:
    return Connection.objects.order_by("name").prefetch_related(_active_credentials())


def active_of(connection: Connection) -> Credential | None:
    creds = getattr(connection, "active_credentials", None)
    if creds is None:
        return connection.credentials.filter(state=CredentialState.ACTIVE).defer("secret").first()
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
    }


def audit_page(*, before: str | None = None, connection: str | None = None) -> dict:
    """Newest first, keyset-paginated on (at, id) through the `before` cursor "<id>"."""
    qs = AuditEvent.objects.select_related("connection").order_by("-at", "-id")
    if connection:
        qs = qs.filter(connection_name=connection)
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
            "connection_filter": connection or ""}



# -- alerts -------------------------------------------------------------------------------

def alert_rule_rows(connection: Connection | None = None) -> list[dict]:
    """One row per condition: the default rule, and this connection's own rule where it has one."""
    from ..models import AlertCondition, AlertRule

    rules = list(AlertRule.objects.filter(connection=None) | AlertRule.objects.filter(connection=connection)
                 if connection else AlertRule.objects.filter(connection=None))
    defaults = {r.condition: r for r in rules if r.connection_id is None}
    own = {r.condition: r for r in rules if r.connection_id is not None}
    return [{"condition": value, "label": label, "default": defaults.get(value), "own": own.get(value),
             "rule": own.get(value) or defaults.get(value)} for value, label in AlertCondition.choices]


def connection_alerts(*, connection: Connection) -> dict:
    """What the connection page shows about alerts: history, rules in force, maintenance."""

    now = timezone.now()
    return {
        "alert_events": list(connection.alert_events.prefetch_related("deliveries__channel").order_by("-at", "-id")[:10]),
        "alert_rules": alert_rule_rows(connection),
        "maintenance_now": connection.maintenance_windows.filter(starts_at__lte=now, ends_at__gt=now).first(),
    }


def firing_alerts(*, now=None) -> list:
    """What is firing now, apart from the history: every active alert state, newest first, each
    marked `silenced` when a maintenance window is in force for its connection. Two queries."""
    from ..models import AlertCondition, AlertState, MaintenanceWindow

    now = now or timezone.now()
    states = list(AlertState.objects.filter(active=True).select_related("connection").order_by("-since", "-id"))
    silenced = set(MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now,
                                                    connection__in=[s.connection_id for s in states])
                   .values_list("connection_id", flat=True))
    labels = dict(AlertCondition.choices)
    for s in states:
        s.label = labels.get(s.condition, s.condition)
        s.silenced = s.connection_id in silenced
    return states


def retired_for_host_change(connection: Connection) -> Credential | None:
    """The secret retired by the latest host change, while no new secret has been entered since."""
    latest = connection.credentials.defer("secret").order_by("-version").first()
    if latest is not None and latest.meta.get("retired_because") == HOST_CHANGED:
        return latest
    return None
