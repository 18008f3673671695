"""The overview and rate-limit headroom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import TruncHour
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from .. import charts
from ..models import (
    Connection,
    Health,
    MaintenanceWindow,
    Outcome,
    RequestLog,
    RotationAttempt,
    RotationState,
)
from ..providers import PROVIDERS
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

    @property
    def rate_label(self) -> str:
        rate = self.error_rate
        if rate is None:
            return ""
        return "<1 %" if 0 < rate < 0.01 else f"{rate:.0%}".replace("%", " %")

    @property
    def spark(self) -> SafeString:
        return charts.sparkline(self.totals, self.errors)


def _log_stats(*, now: datetime, provider: str = "") -> dict[int, LogStats]:
    """One aggregate query: per connection and hour over 24 h, with the recent-window counts."""
    hours = _buckets(now - timedelta(hours=23), now, "hour")[-24:]
    index = {h: i for i, h in enumerate(hours)}
    qs = RequestLog.objects.filter(started_at__gte=hours[0], started_at__lte=now)
    if provider:
        qs = qs.filter(provider=provider)
    recent = Q(started_at__gte=now - timedelta(hours=1))
    rows = (qs.annotate(hour=TruncHour("started_at")).values("connection_id", "hour")
            .annotate(total=Count("id"), errors=Count("id", filter=~Q(outcome=Outcome.OK)),
                      last_hour=Count("id", filter=recent),
                      throttled=Count("id", filter=recent & (Q(status_code=429) | Q(outcome=Outcome.THROTTLED))),
                      last_minute=Count("id", filter=Q(started_at__gte=now - timedelta(minutes=1))),
                      last_second=Count("id", filter=Q(started_at__gte=now - timedelta(seconds=1))))
            .order_by())
    stats: dict[int, LogStats] = {}
    for row in rows:
        s = stats.get(row["connection_id"])
        if s is None:
            s = stats[row["connection_id"]] = LogStats(hours, [0] * len(hours), [0] * len(hours))
        i = index.get(row["hour"])
        if i is not None:
            s.totals[i] += row["total"]
            s.errors[i] += row["errors"]
        s.last_hour += row["last_hour"]
        s.throttled_last_hour += row["throttled"]
        s.last_minute += row["last_minute"]
        s.last_second += row["last_second"]
    return stats


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
    """The provider's throttle rules for this connection, and whether their scope is shared by
    every connection of the vendor (e.g. a per-egress-IP budget) rather than per connection or token."""
    plan_of = getattr(provider, "throttle_plan", None)
    if plan_of is None:
        return None, False
    try:
        plan = plan_of(connection_id=connection.pk, fingerprint="a")
        other = plan_of(connection_id=connection.pk + 1, fingerprint="b")
    except Exception:  # a provider that cannot plan without a credential: show observed figures
        return None, False
    shared = bool(plan.rules) and [r.scope for r in plan.rules] == [r.scope for r in other.rules]
    return plan, shared


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


def _rotation_annotations() -> dict:
    latest = RotationAttempt.objects.filter(connection=OuterRef("pk")).order_by("-started_at")
    return {"rotation_state": Subquery(latest.values("state")[:1]),
            "rotation_at": Subquery(latest.values("started_at")[:1])}


_PLACEHOLDER = "name-placeholder"
# Triage order on the overview: what needs a person first, healthy connections last.
TRIAGE_ORDER = {Health.NEEDS_ATTENTION: 0, Health.FAILING: 1, Health.DEGRADED: 2, Health.SUSPENDED: 3,
                Health.UNKNOWN: 4, Health.OK: 5}
PROBLEMS = (Health.NEEDS_ATTENTION, Health.FAILING, Health.DEGRADED)
ROTATION_LABELS = dict(RotationState.choices)
HEALTH_LABELS = dict(Health.choices)


def _url_templates() -> dict[str, str]:
    """Per-connection URLs, reversed once per page (200 rows x 5 reverses is measurable); a
    route another area has not added yet is simply absent."""
    urls = {}
    for key, name in (("detail", "connection_detail"), ("errors", "connection_errors"), ("test", "connection_test")):
        try:
            urls[key] = reverse(name, args=[_PLACEHOLDER])
        except NoReverseMatch:
            pass
    return urls


def overview(*, now: datetime | None = None) -> dict:
    """Every connection with health, 24 h error rate and trend, headroom and rotation state. Two queries.

    Rows come in triage order (needs attention, failing, degraded, then the rest, healthy last); a
    row in trouble carries `problem_since`: when its health last changed (tests and rotations stamp
    health_changed_at), or else the last passing test, the last moment it was known to work.
    """
    now = now or timezone.now()
    connections = list(Connection.objects.order_by("name").annotate(**_rotation_annotations()))
    stats = _log_stats(now=now)
    empty_hours = _buckets(now - timedelta(hours=23), now, "hour")[-24:]

    def empty() -> LogStats:
        return LogStats(empty_hours, [0] * len(empty_hours), [0] * len(empty_hours))

    url_templates = _url_templates()
    log_url = reverse("request_log")
    vendor_stats: dict[str, LogStats] = {}
    for c in connections:
        v = vendor_stats.setdefault(c.provider, empty())
        s = stats.get(c.pk)
        if s:  # per-vendor totals, for budgets shared by every connection of a vendor
            v.last_second += s.last_second
            v.last_minute += s.last_minute
            v.last_hour += s.last_hour
    rows = []
    counts: dict[str, int] = {}
    memo: dict = {}
    maintenance = {w.connection_id: w for w in MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now)}
    for c in connections:
        c.rotation_label = ROTATION_LABELS.get(c.rotation_state, "")
        c.health_label = HEALTH_LABELS.get(c.health, c.health)  # get_FOO_display re-normalises choices per call
        c.vendor_label = PROVIDERS[c.provider].label if c.provider in PROVIDERS else c.provider
        s = stats.get(c.pk) or empty()
        headroom = headroom_for(c, s, vendor_stats=vendor_stats[c.provider], now=now, memo=memo)
        urls = {key: url.replace(_PLACEHOLDER, c.name) for key, url in url_templates.items()}
        urls["log"] = f"{log_url}?connection={c.name}"
        rows.append({"connection": c, "stats": s, "headroom": headroom, "urls": urls,
                     "maintenance": maintenance.get(c.pk),
                     "problem_since": (c.health_changed_at or c.last_ok_at) if c.health in PROBLEMS else None})
        counts[c.health] = counts.get(c.health, 0) + 1
    rows.sort(key=lambda row: TRIAGE_ORDER.get(row["connection"].health, len(TRIAGE_ORDER)))  # stable: by name within
    return {"rows": rows, "health_counts": counts, "now": now, "poll_seconds": 15,
            "problem_count": sum(counts.get(h, 0) for h in PROBLEMS)}


def health_counts() -> dict[str, int]:
    """How many connections are in each health state: the overview's summary tiles (one query)."""
    return dict(Connection.objects.values_list("health").annotate(n=Count("id")).order_by())


def connection_headroom(*, connection: Connection, now: datetime | None = None) -> dict:
    """The headroom of one connection, for its detail page. One aggregate query (the vendor's rows)."""
    now = now or timezone.now()
    stats = _log_stats(now=now, provider=connection.provider)
    vendor = _empty_stats(now)
    for s in stats.values():
        vendor.last_second += s.last_second
        vendor.last_minute += s.last_minute
        vendor.last_hour += s.last_hour
    own = stats.get(connection.pk) or _empty_stats(now)
    return headroom_for(connection, own, vendor_stats=vendor, now=now)
