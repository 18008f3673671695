"""Reads for application keys (the proxy's callers): rows for the page and the CLI, never a key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Prefetch, Q
from django.utils import timezone

from ..models import ApplicationKey, Connection, Outcome, RequestLog

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class AppRow:
    name: str
    prefix: str  # sbk_<key id>: identifies the key, reveals nothing
    connections: list[str]
    methods: list[str]  # [] = any method
    created_at: datetime
    created_by: str
    rotated_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    calls_24h: int  # proxied calls (first attempts) in the last 24 hours, from the request log
    errors_24h: int  # attempts that did not end OK (vendor errors, timeouts, Switchboard's 429s)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict:
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {"name": self.name, "key_prefix": self.prefix, "connections": self.connections,
                "methods": self.methods or ["any"], "active": self.active, "created_at": iso(self.created_at),
                "created_by": self.created_by, "rotated_at": iso(self.rotated_at), "revoked_at": iso(self.revoked_at),
                "last_used_at": iso(self.last_used_at), "calls_24h": self.calls_24h,
                "errors_24h": self.errors_24h}


def _usage(names: list[str]) -> dict[str, dict]:
    """Calls, errors and the latest call per application over the last 24 hours (one query on the
    request log's application index)."""
    if not names:
        return {}
    rows = (RequestLog.objects.filter(application__in=names, started_at__gte=timezone.now() - WINDOW)
            .values("application")
            .annotate(calls=Count("id", filter=Q(attempt=1)), errors=Count("id", filter=~Q(outcome=Outcome.OK)),
                      last=Max("started_at")))
    return {row["application"]: row for row in rows}


def _row(app: ApplicationKey, usage: dict | None = None) -> AppRow:
    usage = usage or {}
    last = max((t for t in (app.last_used_at, usage.get("last")) if t), default=None)
    return AppRow(name=app.name, prefix=app.prefix, connections=[c.name for c in app.connections.all()],
                  methods=list(app.methods or []), created_at=app.created_at, created_by=app.created_by_label,
                  rotated_at=app.rotated_at, revoked_at=app.revoked_at, last_used_at=last,
                  calls_24h=usage.get("calls", 0), errors_24h=usage.get("errors", 0))


def app_rows() -> list[AppRow]:
    """Every application, live ones first, with its connections and use (three queries)."""
    qs = ApplicationKey.objects.order_by("revoked_at", "name").prefetch_related(
        Prefetch("connections", queryset=Connection.objects.only("id", "name").order_by("name")))
    apps = list(qs)
    usage = _usage([app.name for app in apps])
    rows = [_row(app, usage.get(app.name)) for app in apps]
    return sorted(rows, key=lambda r: (not r.active, r.name))


def app_row(*, name: str) -> AppRow | None:
    app = ApplicationKey.objects.filter(name=name).prefetch_related("connections").first()
    return _row(app, _usage([app.name]).get(app.name)) if app else None


def application_names() -> list[str]:
    """For the request log's application filter."""
    return list(ApplicationKey.objects.order_by("name").values_list("name", flat=True))
