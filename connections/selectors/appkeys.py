"""Reads for application keys (the proxy's callers): rows for the page and the CLI, never a key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch

from ..models import ApplicationKey, Connection


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
    call_count: int
    refused_count: int

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict:
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {"name": self.name, "key_prefix": self.prefix, "connections": self.connections,
                "methods": self.methods or ["any"], "active": self.active, "created_at": iso(self.created_at),
                "created_by": self.created_by, "rotated_at": iso(self.rotated_at), "revoked_at": iso(self.revoked_at),
                "last_used_at": iso(self.last_used_at), "call_count": self.call_count,
                "refused_count": self.refused_count}


def _row(app: ApplicationKey) -> AppRow:
    return AppRow(name=app.name, prefix=app.prefix, connections=[c.name for c in app.connections.all()],
                  methods=list(app.methods or []), created_at=app.created_at, created_by=app.created_by_label,
                  rotated_at=app.rotated_at, revoked_at=app.revoked_at, last_used_at=app.last_used_at,
                  call_count=app.call_count, refused_count=app.refused_count)


def app_rows() -> list[AppRow]:
    """Every application, live ones first, each with its connections (two queries)."""
    qs = ApplicationKey.objects.order_by("revoked_at", "name").prefetch_related(
        Prefetch("connections", queryset=Connection.objects.only("id", "name").order_by("name")))
    rows = [_row(app) for app in qs]
    return sorted(rows, key=lambda r: (not r.active, r.name))


def app_row(*, name: str) -> AppRow | None:
    app = ApplicationKey.objects.filter(name=name).prefetch_related("connections").first()
    return _row(app) if app else None


def application_names() -> list[str]:
    """For the request log's application filter."""
    return list(ApplicationKey.objects.order_by("name").values_list("name", flat=True))
