"""The overview and rate-limit headroom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
    Window,
)
from django.utils import timezone

from ..models import Connection, Credential, Health, MaintenanceWindow, RequestLog, RotationAttempt
from ..providers import PROVIDERS
from ..rollups import HOUR, MINUTE, RequestRollup
from .log import _buckets

# -- overview and rate-limit headroom -------------------------------------------------------

@dataclass
class LogStats:
    """One connection's request log over the last 24 h, in hour buckets (oldest first)."""

    hours: list[datetime]
    totals: list[int]
    errors: list[int]
    last_hour: int = 0
    throttled_last_hour: int = 0
    last_minute: int = 0
    last_second: int = 0

    @property
    def total(self) -> int:
        return sum(self.totals)

    @property
    def failed(self) -> int:
        return sum(self.errors)

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.total if self.total else None



def _log_stats(*, now: datetime, connection_ids: list[int]) -> dict[int, LogStats]:
    """Per connection: 24 hour buckets and the last hour from the rollups (rollups.py, exact up to
    now: the trigger counts every row as it is written). One query, whatever the size of the log:
    the hour buckets, and the minute buckets of the last hour summed into one row (bucket NULL)."""
    hours = _buckets(now - timedelta(hours=23), now, "hour")[-24:]
    index = {h: i for i, h in enumerate(hours)}
    stats: dict[int, LogStats] = {}
    since = now.replace(second=0, microsecond=0) - timedelta(minutes=59)  # this minute and the 59 before
    rows = (RequestRollup.objects.filter(connection_id__in=connection_ids, bucket__lte=now)
            .filter(Q(span=HOUR, bucket__gte=hours[0]) | Q(span=MINUTE, bucket__gte=since))
            .annotate(hour=Case(When(span=HOUR, then=F("bucket")), output_field=DateTimeField()))
            .values("connection_id", "hour").annotate(t=Sum("total"), ok=Sum("ok"), lim=Sum("limited")).order_by()
            .values_list("connection_id", "hour", "t", "ok", "lim"))
    for pk, hour, total, ok, limited in rows:
        s = stats.get(pk)
        if s is None:
            s = stats[pk] = LogStats(hours, [0] * len(hours), [0] * len(hours))
        if hour is None:
            s.last_hour, s.throttled_last_hour = total, limited
        elif (i := index.get(hour)) is not None:
            s.totals[i] += total
            s.errors[i] += total - ok
    return stats


def _recent(*, now: datetime, provider: str = "") -> tuple[dict[int, tuple[int, int]], dict[str, LogStats]]:
    """The last minute and second from the log itself (an index range of one minute), per
    connection and per vendor (for budgets every connection of a vendor shares, e.g. Cleverbridge's
    per egress IP). One query. No built-in vendor shares an hourly budget, so the vendors' last
    hour is not counted."""
    qs = RequestLog.objects.filter(started_at__gte=now - timedelta(minutes=1), started_at__lte=now)
    if provider:
        qs = qs.filter(provider=provider)
    per_connection, per_vendor = {}, {}
    for key, pk, minute, second in (qs.values("provider", "connection_id")
                                    .annotate(m=Count("id"), s=Count("id", filter=Q(started_at__gte=now - timedelta(seconds=1))))
                                    .order_by().values_list("provider", "connection_id", "m", "s")):
        per_connection[pk] = (minute, second)
        v = per_vendor.get(key) or per_vendor.setdefault(key, _empty_stats(now))
        v.last_minute += minute
        v.last_second += second
    return per_connection, per_vendor


def _empty_stats(now: datetime) -> LogStats:
    hours = _buckets(now - timedelta(hours=23), now, "hour")[-24:]
    return LogStats(hours, [0] * len(hours), [0] * len(hours))


def _level(fraction: float | None) -> str:
    if fraction is None:
        return "unknown"
    return "danger" if fraction >= 0.9 else "warn" if fraction >= 0.7 else "ok"


def _thresholds(limit: int) -> dict:
    """<meter> bounds: green below 70 % of the limit, amber to 90 %, red above."""
    return {"low": round(limit * 0.7, 2), "high": round(limit * 0.9, 2)}


def _unit(period: float) -> str:
    """The window a limit is counted in, as the pages say it: "per s", "per min", "per h"."""
    return "s" if period <= 1 else "min" if period <= 60 else "h"


def _throttle_plan(provider, connection: Connection):
    """The provider's throttle rules for this connection (scoped by the active credential's
    fingerprint, as the client scopes them), and whether the vendor's budget is shared by every
    connection of the vendor (e.g. per egress IP): the plan says so."""
    if hasattr(connection, "active_fingerprint"):  # annotated by overview()
        fingerprint = connection.active_fingerprint or ""
    else:
        active = connection.credentials.active().only("fingerprint").first()
        fingerprint = active.fingerprint if active else ""
    plan = provider.throttle_plan(connection_id=connection.pk, fingerprint=fingerprint)
    return plan, bool(plan.rules) and plan.shared


def _in_flight(scope: str, memo: dict) -> int | None:
    """Requests in flight in a throttle scope, from the shared limiter (one call per scope)."""
    if scope not in memo:
        try:
            from ..outbound.throttle import get_limiter

            memo[scope] = get_limiter().in_flight(scope)
        except Exception:  # the page renders without the figure when the limiter's store is down
            memo[scope] = None
    return memo[scope]


def headroom_for(connection: Connection, stats: LogStats, *, vendor_stats: LogStats, now: datetime,
                 memo: dict | None = None) -> dict:
    """How close a connection is to its vendor's rate limit, from what the vendor publishes.

    - "headers": the vendor sends its limit (X-RateLimit-*): remaining of limit, reset countdown.
    - "limit": the provider declares a rate (requests per second or per minute), possibly
      shared by all the vendor's connections, and a cap on requests in flight: the requests of
      the last period (from the log) against it, and the in-flight count from the limiter.
    - "observed": the vendor publishes nothing: the observed rate and 429s over the last hour.
    Any blocked-until (Retry-After, X-RateLimit-Reset) shows in every kind.
    """
    memo = {} if memo is None else memo
    provider = PROVIDERS.get(connection.provider)
    blocked = connection.blocked_until if connection.blocked_until and connection.blocked_until > now else None
    base = {"blocked_until": blocked, "blocked_unix": int(blocked.timestamp()) if blocked else None,
            "throttled_last_hour": stats.throttled_last_hour, "last_hour": stats.last_hour,
            "rate_per_minute": stats.last_hour / 60 if stats.last_hour else 0}
    plan, shared = _throttle_plan(provider, connection) if provider else (None, False)
    rules = {r.kind: r for r in plan.rules} if plan else {}
    rate = rules.get("pace") or rules.get("window")
    if connection.rl_limit:
        remaining = connection.rl_remaining if connection.rl_remaining is not None else connection.rl_limit
        reset = connection.rl_reset_at
        expired = reset is not None and reset <= now
        used = 0 if expired else max(connection.rl_limit - remaining, 0)
        fraction = used / connection.rl_limit
        return {**base, **_thresholds(connection.rl_limit), "kind": "headers", "limit": connection.rl_limit,
                "remaining": connection.rl_limit if expired else remaining, "used": used, "fraction": fraction,
                "level": "danger" if blocked else _level(fraction), "reset_at": reset,
                "reset_unix": int(reset.timestamp()) if reset else None, "window_reset": expired,
                "bucket": connection.rl_bucket, "observed_at": connection.rl_observed_at,
                "unit": _unit(rate.period) if rate else ""}
    if rate:
        source = vendor_stats if shared else stats
        unit = _unit(rate.period)
        used = {"s": source.last_second, "min": source.last_minute, "h": source.last_hour}[unit]
        fraction = used / rate.limit
        concurrency = rules.get("concurrency")
        return {**base, **_thresholds(rate.limit), "kind": "limit", "limit": rate.limit, "unit": unit, "used": used,
                "fraction": fraction, "level": "danger" if blocked else _level(fraction), "shared": shared,
                "limit_note": getattr(provider, "rate_limit_note", ""),
                "in_flight": _in_flight(concurrency.scope, memo) if concurrency else None,
                "max_in_flight": concurrency.limit if concurrency else None, "observed_at": now}
    return {**base, "kind": "observed", "used": stats.last_minute, "fraction": None,
            "level": "danger" if blocked else "warn" if stats.throttled_last_hour else "ok", "observed_at": now}


def _row_annotations() -> dict:
    latest = RotationAttempt.objects.filter(connection=OuterRef("pk")).newest_first()
    active = Credential.objects.active().filter(connection=OuterRef("pk"))
    return {"rotation_state": Subquery(latest.values("state")[:1]),
            "rotation_at": Subquery(latest.values("started_at")[:1]),
            "active_fingerprint": Subquery(active.values("fingerprint")[:1])}


@dataclass
class OverviewRow:
    connection: Connection  # annotated: rotation_state, rotation_at, active_fingerprint
    stats: LogStats
    headroom: dict
    maintenance: MaintenanceWindow | None
    problem_since: datetime | None  # set when the connection is in trouble


# Triage order on the overview: what needs a person first, healthy connections last.
TRIAGE_ORDER = {Health.NEEDS_ATTENTION: 0, Health.FAILING: 1, Health.DEGRADED: 2, Health.SUSPENDED: 3,
                Health.UNKNOWN: 4, Health.OK: 5}
PROBLEMS = (Health.NEEDS_ATTENTION, Health.FAILING, Health.DEGRADED)


OVERVIEW_PAGE_SIZE = 25  # a screen or two; problems sort first, the rest is a page away


def _triage() -> Case:
    return Case(*[When(health=h, then=Value(i)) for h, i in TRIAGE_ORDER.items()], default=Value(len(TRIAGE_ORDER)),
                output_field=IntegerField())


def overview(*, now: datetime | None = None, page: int = 1, page_size: int = OVERVIEW_PAGE_SIZE) -> dict:
    """One page of connections with health, 24 h error rate and trend, headroom and rotation state.

    Rows come in triage order (needs attention, failing, degraded, then the rest, healthy last), a
    page at a time: with 2,000 connections the problems are on page 1. A row in trouble carries
    `problem_since`: when its health last changed (tests and rotations stamp health_changed_at), or
    else the last passing test, the last moment it was known to work. Five queries whatever the
    number of connections or log rows: the page of connections (with the health counts), their
    rotation state and active credential, their maintenance windows, their rollups, the log's last
    minute. Archived connections are not listed (Connection.objects leaves them out).
    """
    now = now or timezone.now()
    page = max(1, page)
    health_totals = {f"n_{h}": Window(Count("id", filter=Q(health=h))) for h in Health.values}
    # The window counts see every connection (they run before LIMIT); the per-row look-ups only
    # the page's (the second query), or 2,000 connections would cost 8,000 subqueries.
    qs = Connection.objects.annotate(triage=_triage(), n_total=Window(Count("id")), **health_totals) \
        .order_by("triage", "name")
    connections = list(qs[(page - 1) * page_size:page * page_size])
    if not connections and page > 1:  # past the last page (connections were deleted): show the last one
        page = max(1, -(-Connection.objects.count() // page_size))
        connections = list(qs[(page - 1) * page_size:page * page_size])
    ids = [c.pk for c in connections]
    extra = {row["pk"]: row for row in Connection.objects.filter(pk__in=ids).values("pk", **_row_annotations())}
    for c in connections:
        for key, value in extra[c.pk].items():
            setattr(c, key, value)
    maintenance = {w.connection_id: w for w in MaintenanceWindow.objects.in_force(now).filter(connection_id__in=ids)}
    first = connections[0] if connections else None
    counts = {h: getattr(first, f"n_{h}") for h in Health.values if first and getattr(first, f"n_{h}")}
    total = first.n_total if first else 0
    pages = max(1, -(-total // page_size))
    offset = (page - 1) * page_size
    stats = _log_stats(now=now, connection_ids=ids)
    recent, vendor_stats = _recent(now=now)
    rows = []
    memo: dict = {}
    for c in connections:
        s = stats.get(c.pk) or _empty_stats(now)
        s.last_minute, s.last_second = recent.get(c.pk, (0, 0))
        vendor = vendor_stats.get(c.provider) or _empty_stats(now)
        headroom = headroom_for(c, s, vendor_stats=vendor, now=now, memo=memo)
        rows.append(OverviewRow(connection=c, stats=s, headroom=headroom, maintenance=maintenance.get(c.pk),
                                problem_since=(c.health_changed_at or c.last_ok_at) if c.health in PROBLEMS else None))
    problems = sum(counts.get(h, 0) for h in PROBLEMS)
    return {"rows": rows, "health_counts": counts, "now": now, "poll_seconds": 15,
            "problem_count": problems, "triage_break": problems - offset if 0 < problems - offset < len(rows) else -1,
            "page": page, "pages": pages, "total": total, "first": offset + 1, "last": offset + len(rows),
            "previous_page": page - 1 if page > 1 else None, "next_page": page + 1 if page < pages else None}


def health_counts() -> dict[str, int]:
    """How many connections are in each health state: the overview's summary tiles (one query)."""
    return dict(Connection.objects.values_list("health").annotate(n=Count("id")).order_by())


def connection_headroom(*, connection: Connection, now: datetime | None = None) -> dict:
    """The headroom of one connection, for its detail page. Two queries."""
    now = now or timezone.now()
    own = _log_stats(now=now, connection_ids=[connection.pk]).get(connection.pk) or _empty_stats(now)
    recent, vendors = _recent(now=now, provider=connection.provider)
    own.last_minute, own.last_second = recent.get(connection.pk, (0, 0))
    vendor = vendors.get(connection.provider) or _empty_stats(now)
    return headroom_for(connection, own, vendor_stats=vendor, now=now)
