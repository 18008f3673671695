"""Read-side queries for pages (HackSoft style). Each page runs a constant number of queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from django.db.models import Case, Count, Max, Min, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import TruncDay, TruncHour
from django.shortcuts import get_object_or_404
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from . import charts
from .advice import advise, support_deadline
from .models import (
    AuditEvent,
    Connection,
    Credential,
    CredentialState,
    Health,
    MaintenanceWindow,
    Outcome,
    RequestLog,
    RotationAttempt,
    RotationState,
)
from .providers import PROVIDERS

AUDIT_PAGE_SIZE = 50


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


# ---------------------------------------------------------------------------------------------
# Operations pages: overview, request log, error details, error history, rate-limit headroom.
# Each selector runs a fixed number of queries whatever the number of connections or rows, and
# never COUNT(*) or OFFSET over the request log: keyset pagination on (started_at, id).
# ---------------------------------------------------------------------------------------------

LOG_PAGE_SIZE = 50
OPERATIONS = ("test", "call", "refresh", "probe", "login")
STATUS_CLASSES = {"2xx": (200, 299), "3xx": (300, 399), "4xx": (400, 499), "5xx": (500, 599)}
NO_ERROR_CODE = "(none)"  # the log filter value for "no vendor error code"
ERROR_OUTCOMES = [o for o in Outcome.values if o != Outcome.OK]
OUTCOME_LABELS = dict(Outcome.choices)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The list columns of the log; the excerpts and JSON details are only read on the details page.
_LOG_LIST_FIELDS = ("id", "connection_id", "provider", "operation", "method", "path", "attempt", "started_at",
                    "duration_ms", "status_code", "outcome", "vendor_request_id", "error_code", "error_message",
                    "triggered_by")


def _parse_local_datetime(value: str) -> datetime | None:
    """A datetime-local input ("2025-01-31T14:05") in the site's time zone, or an ISO string with an offset."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


def encode_cursor(started_at: datetime, pk: int) -> str:
    return f"{(started_at - _EPOCH) // timedelta(microseconds=1)}.{pk}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    try:
        micros, pk = (value or "").split(".")
        return _EPOCH + timedelta(microseconds=int(micros)), int(pk)
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class LogFilters:
    """The request log's filters, parsed strictly from the query string (unknown values are dropped)."""

    connection: str = ""
    vendor: str = ""
    operation: str = ""
    outcome: str = ""
    status: str = ""  # "4xx", "429" or "none" (no answer)
    error_code: str = ""  # exact, or NO_ERROR_CODE
    request_id: str = ""  # the vendor's request id, exact match
    since: datetime | None = None
    until: datetime | None = None
    tail: bool = False

    @classmethod
    def from_query(cls, params) -> LogFilters:
        def get(key: str) -> str:
            return (params.get(key) or "").strip()[:200]

        status = get("status").lower()
        if not (status in STATUS_CLASSES or status == "none" or (status.isdigit() and 100 <= int(status) <= 599)):
            status = ""
        return cls(
            connection=get("connection"),
            vendor=get("vendor") if get("vendor") in PROVIDERS else "",
            operation=get("operation") if get("operation") in OPERATIONS else "",
            outcome=get("outcome") if get("outcome") in Outcome.values else "",
            status=status,
            error_code=get("error_code"),
            request_id=get("request_id"),
            since=_parse_local_datetime(get("since")) if get("since") else None,
            until=_parse_local_datetime(get("until")) if get("until") else None,
            tail=get("tail") in ("1", "on", "true"),
        )

    def as_params(self) -> dict[str, str]:
        params = {name: getattr(self, name) for name in ("connection", "vendor", "operation", "outcome", "status",
                                                          "error_code", "request_id")}
        for name in ("since", "until"):
            value = getattr(self, name)
            if value:
                params[name] = timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")
        if self.tail:
            params["tail"] = "1"
        return {k: v for k, v in params.items() if v}

    def querystring(self, **extra) -> str:
        params = self.as_params()
        params.update({k: str(v) for k, v in extra.items() if v not in (None, "")})
        return urlencode(params)

    @property
    def active(self) -> bool:
        return bool(set(self.as_params()) - {"tail"})

    def apply(self, qs: QuerySet[RequestLog], *, connection_id: int | None) -> QuerySet[RequestLog]:
        if self.connection:
            qs = qs.filter(connection_id=connection_id if connection_id is not None else -1)
        if self.vendor:
            qs = qs.filter(provider=self.vendor)
        if self.operation:
            qs = qs.filter(operation=self.operation)
        if self.outcome:
            qs = qs.filter(outcome=self.outcome)
        if self.status == "none":
            qs = qs.filter(status_code__isnull=True)
        elif self.status in STATUS_CLASSES:
            qs = qs.filter(status_code__range=STATUS_CLASSES[self.status])
        elif self.status:
            qs = qs.filter(status_code=int(self.status))
        if self.error_code:
            qs = qs.filter(error_code="" if self.error_code == NO_ERROR_CODE else self.error_code)
        if self.request_id:
            qs = qs.filter(vendor_request_id=self.request_id)
        if self.since:
            qs = qs.filter(started_at__gte=self.since)
        if self.until:
            qs = qs.filter(started_at__lt=self.until)
        return qs


def _connection_names() -> dict[int, str]:
    return dict(Connection.objects.order_by("name").values_list("id", "name"))


def request_log_page(*, filters: LogFilters, before: str | None = None, tail_after: int | None = None,
                     page_size: int = LOG_PAGE_SIZE) -> dict:
    """Newest first. `before` (a cursor) loads older rows; `tail_after` (an id) rows recorded since.

    Two queries: the connections (names for the filter and the rows) and one page of rows
    read through the (started_at, id) indexes; a third (max id) starts a live tail.
    """
    names = _connection_names()
    ids = {name: pk for pk, name in names.items()}
    qs = filters.apply(RequestLog.objects.only(*_LOG_LIST_FIELDS), connection_id=ids.get(filters.connection))
    tail_cursor = None
    if tail_after is not None:
        # Rows inserted since the last poll, by id (rows are written when an attempt ends, so an
        # earlier started_at can arrive later); shown newest first.
        rows = list(qs.filter(id__gt=tail_after).order_by("-id")[:page_size])
        rows.sort(key=lambda r: (r.started_at, r.pk), reverse=True)
        more = False
        tail_cursor = max((r.pk for r in rows), default=tail_after)
    else:
        cursor = decode_cursor(before)
        if cursor:
            at, pk = cursor
            # started_at <= at keeps the scan on the index; the OR excludes the rows already shown.
            qs = qs.filter(started_at__lte=at).filter(Q(started_at__lt=at) | Q(id__lt=pk))
        rows = list(qs.order_by("-started_at", "-id")[: page_size + 1])
        more = len(rows) > page_size
        rows = rows[:page_size]
        if filters.tail and not before:
            tail_cursor = RequestLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
    for row in rows:
        row.connection_name = names.get(row.connection_id, "?")
    next_before = encode_cursor(rows[-1].started_at, rows[-1].pk) if more and rows else None
    return {
        "rows": rows,
        "filters": filters,
        "params": filters.as_params(),
        "next_before": next_before,
        "older_query": filters.querystring(before=next_before) if next_before else "",
        "is_tail": tail_after is not None,
        "tail_cursor": tail_cursor,
        "tail_query": filters.querystring(after=tail_cursor) if tail_cursor is not None else "",
        "connection_names": list(names.values()),
        "detail_prefix": reverse("request_detail", args=[0])[:-2],  # "/log/": rows add "<id>/"
        "vendors": PROVIDERS,
        "operations": OPERATIONS,
        "outcomes": Outcome.choices,
        "status_classes": [*STATUS_CLASSES, "none"],
    }


def request_detail(*, pk: int) -> dict:
    """One attempt with its retry chain (same chain_id) and what the documentation advises. Two queries."""
    log = get_object_or_404(RequestLog.objects.select_related("connection"), pk=pk)
    chain = list(RequestLog.objects.filter(chain_id=log.chain_id).only(*_LOG_LIST_FIELDS, "chain_id", "retry_after")
                 .order_by("started_at", "attempt", "id"))
    provider = PROVIDERS.get(log.provider)
    details = log.error_details if isinstance(log.error_details, dict) else {"details": log.error_details}
    missing = details.get("missingInputVars")
    support_until = support_deadline(log, provider)
    return {
        "log": log,
        "connection": log.connection,
        "provider": provider,
        "chain": chain,
        "advice": advise(log, provider),
        "support_until": support_until,
        "support_expired": support_until is not None and support_until <= timezone.now(),
        "missing_input_vars": missing if isinstance(missing, list) else ([missing] if missing else []),
        "other_details": {k: v for k, v in details.items() if k not in ("missingInputVars", "support_until")},
    }


# -- error history --------------------------------------------------------------------------

ERROR_RANGES = {"24h": (timedelta(hours=24), "hour"), "7d": (timedelta(days=7), "day"),
                "30d": (timedelta(days=30), "day")}


def _error_category() -> Case:
    return Case(
        When(Q(outcome=Outcome.THROTTLED) | Q(status_code=429), then=Value("throttled")),
        When(outcome__in=[Outcome.NETWORK_ERROR, Outcome.TIMEOUT], then=Value("network")),
        When(status_code__gte=500, then=Value("5xx")),
        default=Value("4xx"),
    )


def _buckets(since: datetime, now: datetime, unit: str) -> list[datetime]:
    local_since, local_now = timezone.localtime(since), timezone.localtime(now)
    if unit == "hour":
        start = local_since.replace(minute=0, second=0, microsecond=0)
        count = int((local_now - start) // timedelta(hours=1)) + 1
        return [timezone.localtime(start + timedelta(hours=i)) for i in range(count)]
    days = (local_now.date() - local_since.date()).days + 1
    return [timezone.make_aware(datetime.combine(local_since.date() + timedelta(days=i), time())) for i in range(days)]


def error_history(*, connection: Connection | None = None, range_key: str = "7d", vendor: str = "",
                  now: datetime | None = None) -> dict:
    """Errors over time (a stacked SVG chart) and grouped by status and vendor error code.

    Two queries over the error rows of the range (index reqlog_outcome_recent), whatever their number.
    """
    now = now or timezone.now()
    range_key = range_key if range_key in ERROR_RANGES else "7d"
    span, unit = ERROR_RANGES[range_key]
    since = now - span
    vendor = vendor if vendor in PROVIDERS and connection is None else ""
    qs = RequestLog.objects.filter(outcome__in=ERROR_OUTCOMES, started_at__gte=since, started_at__lte=now)
    if connection is not None:
        qs = qs.filter(connection_id=connection.pk)
    elif vendor:
        qs = qs.filter(provider=vendor)
    trunc = TruncHour if unit == "hour" else TruncDay
    per_bucket = (qs.annotate(bucket=trunc("started_at"), category=_error_category())
                  .values("bucket", "category").annotate(n=Count("id")).order_by())
    buckets = _buckets(since, now, unit)
    index = {b: i for i, b in enumerate(buckets)}
    series = {key: [0] * len(buckets) for key, _, _ in charts.CATEGORIES}
    for row in per_bucket:
        i = index.get(row["bucket"])
        if i is not None:
            series[row["category"]][i] += row["n"]
    groups = list(
        qs.values("provider", "outcome", "status_code", "error_code")
        .annotate(count=Count("id"), first_seen=Min("started_at"), last_seen=Max("started_at"),
                  connections=Count("connection_id", distinct=True), latest_id=Max("id"),
                  message=Max("error_message"))
        .order_by("-count", "-last_seen")[:100]
    )
    since_param = timezone.localtime(since).strftime("%Y-%m-%dT%H:%M")
    for g in groups:
        g["log_query"] = urlencode({k: v for k, v in {
            "connection": connection.name if connection else "",
            "vendor": g["provider"] if connection is None else "",
            "outcome": g["outcome"],
            "status": g["status_code"] if g["status_code"] is not None else "none",
            "error_code": g["error_code"] or NO_ERROR_CODE,
            "since": since_param,
        }.items() if v})
        g["provider_label"] = PROVIDERS[g["provider"]].label if g["provider"] in PROVIDERS else g["provider"]
        g["outcome_label"] = OUTCOME_LABELS.get(g["outcome"], g["outcome"])
    return {
        "connection": connection,
        "range_key": range_key,
        "ranges": list(ERROR_RANGES),
        "vendor": vendor,
        "vendors": PROVIDERS,
        "since": since,
        "groups": groups,
        "total": sum(sum(v) for v in series.values()),
        "chart": charts.error_chart(buckets, series, bucket_label=unit),
    }


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
    """Requests in flight in a throttle scope, from the shared limiter (one cache call per scope)."""
    if scope not in memo:
        try:
            from .throttle import get_limiter

            memo[scope] = get_limiter().in_flight(scope)
        except Exception:  # the page renders without the figure when the cache is down
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
                "bucket": connection.rl_bucket, "observed_at": connection.rl_observed_at}
    plan, shared = _throttle_plan(provider, connection) if provider else (None, False)
    rules = {r.kind: r for r in plan.rules} if plan else {}
    rate = rules.get("pace") or rules.get("window")
    if rate:
        source = vendor_stats if shared else stats
        if rate.period <= 1:
            used, unit = source.last_second, "s"
        elif rate.period <= 60:
            used, unit = source.last_minute, "min"
        else:
            used, unit = source.last_hour, "h"
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
ROTATION_LABELS = dict(RotationState.choices)
HEALTH_LABELS = dict(Health.choices)


def _url_templates() -> dict[str, str]:
    """Per-connection URLs, reversed once per page (200 rows x 5 reverses is measurable); a
    route another area has not added yet is simply absent."""
    urls = {}
    for key, name in (("detail", "connection_detail"), ("errors", "connection_errors"), ("test", "connection_test"),
                      ("rotate", "connection_rotate")):
        try:
            urls[key] = reverse(name, args=[_PLACEHOLDER])
        except NoReverseMatch:
            pass
    return urls


def overview(*, now: datetime | None = None) -> dict:
    """Every connection with health, 24 h error rate and trend, headroom and rotation state. Two queries."""
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
                     "maintenance": maintenance.get(c.pk)})
        counts[c.health] = counts.get(c.health, 0) + 1
    return {"rows": rows, "health_counts": counts, "now": now, "poll_seconds": 15}


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


# -- alerts -------------------------------------------------------------------------------

def alert_rule_rows(connection: Connection | None = None) -> list[dict]:
    """One row per condition: the default rule, and this connection's own rule where it has one."""
    from .models import AlertCondition, AlertRule

    rules = list(AlertRule.objects.filter(connection=None) | AlertRule.objects.filter(connection=connection)
                 if connection else AlertRule.objects.filter(connection=None))
    defaults = {r.condition: r for r in rules if r.connection_id is None}
    own = {r.condition: r for r in rules if r.connection_id is not None}
    return [{"condition": value, "label": label, "default": defaults.get(value), "own": own.get(value),
             "rule": own.get(value) or defaults.get(value)} for value, label in AlertCondition.choices]


def connection_alerts(*, connection: Connection) -> dict:
    """What the connection page shows about alerts: history, rules in force, maintenance."""
    from django.utils import timezone

    now = timezone.now()
    return {
        "alert_events": list(connection.alert_events.prefetch_related("deliveries__channel").order_by("-at", "-id")[:10]),
        "alert_rules": alert_rule_rows(connection),
        "maintenance_now": connection.maintenance_windows.filter(starts_at__lte=now, ends_at__gt=now).first(),
    }
