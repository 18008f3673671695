"""The request log, its error details, and error history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import cache

from django.db import connection as db_connection
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from .. import rollups
from ..models import Connection, Outcome, RequestLog
from ..outbound.logrows import BLOCK_SECONDS
from ..providers import PROVIDERS
from ..rollups import ErrorRollup

# ---------------------------------------------------------------------------------------------
# Operations pages: overview, request log, error details, error history, rate-limit headroom.
# Each selector runs a fixed number of queries whatever the number of connections or rows, and
# never COUNT(*) or OFFSET over the request log: keyset pagination on (started_at, id).
# ---------------------------------------------------------------------------------------------

LOG_PAGE_SIZE = 50
PAGE_WINDOWS = (timedelta(days=1), timedelta(days=8), None)  # PostgreSQL: where a page is looked for first
TAIL_WINDOW = timedelta(days=1)
STATUS_CLASSES = {"2xx": (200, 299), "3xx": (300, 399), "4xx": (400, 499), "5xx": (500, 599)}
NO_ERROR_CODE = "(none)"  # the log filter value for "no vendor error code"
ERROR_OUTCOMES = [o for o in Outcome.values if o != Outcome.OK]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The list columns of the log; the excerpts and JSON details are only read on the details page.
_LOG_LIST_FIELDS = ("id", "connection_id", "provider", "operation", "method", "path", "attempt", "started_at",
                    "duration_ms", "status_code", "outcome", "vendor_request_id", "error_code", "error_message",
                    "triggered_by", "application")


# The live tail reads rows by id. On PostgreSQL the client reserves ids in blocks before it writes
# their rows (outbound/logrows.py: a block is used for at most BLOCK_SECONDS), so a row can arrive
# after a higher id was shown. The tail's cursor therefore remembers the sequence's value at a poll
# ("until") and the database's clock then ("at"): once TAIL_SETTLE has passed, no id up to "until"
# can still arrive, and the ids above "after" that were shown meanwhile are kept ("seen") so that
# none is shown twice. At most two polls' rows are ever in "seen".
TAIL_SETTLE_MS = int((BLOCK_SECONDS + 2.0) * 1000)
TAIL_SEEN_MAX = 1000


@dataclass(frozen=True)
class TailCursor:
    after: int  # every row with this id or a lower one was shown, or never will be
    until: int = 0  # the id sequence's value at `at` (0: SQLite, ids come at insert)
    at: int = 0  # the database clock then, in milliseconds
    seen: tuple[int, ...] = ()  # ids above `after` shown already

    def encode(self) -> str:
        if not self.until:
            return str(self.after)
        return f"{self.after}.{self.until}.{self.at}" + (f".{'-'.join(map(str, self.seen))}" if self.seen else "")


def decode_tail(value: str | int | None) -> TailCursor | None:
    parts = str(value if value is not None else "").split(".")
    if not all(p.isdigit() for p in parts[:3]) or len(parts) not in (1, 3, 4):
        return None
    seen = parts[3].split("-") if len(parts) == 4 else []
    if not all(p.isdigit() for p in seen) or len(seen) > TAIL_SEEN_MAX:
        return None
    numbers = [int(p) for p in parts[:3]] + [0, 0]
    return TailCursor(after=numbers[0], until=numbers[1], at=numbers[2], seen=tuple(int(p) for p in seen))


@cache
def _id_sequence() -> str:
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [RequestLog._meta.db_table])
        return cursor.fetchone()[0]


def _sequence_mark() -> tuple[int, int]:
    """PostgreSQL: the request log's id sequence now, and the database's clock in milliseconds."""
    with db_connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint "
                       f"FROM {_id_sequence()}")
        return cursor.fetchone()


def _next_tail(cursor: TailCursor, shown: list[int], full: bool) -> TailCursor:
    """The cursor after a poll that showed `shown` (ids; `full`: the page was full, the rest of a
    flood is skipped, as rows beyond a page always were)."""
    if db_connection.vendor != "postgresql":
        return TailCursor(after=max(shown, default=cursor.after))
    until, now = _sequence_mark()
    if full:
        return TailCursor(after=max(shown), until=until, at=now)
    seen = sorted({*cursor.seen, *shown})
    if cursor.until and now - cursor.at >= TAIL_SETTLE_MS:
        after = max(cursor.after, cursor.until)  # every id up to `until` has arrived: all were shown
        return TailCursor(after=after, until=until, at=now, seen=tuple(s for s in seen if s > after))
    if not cursor.until:
        return TailCursor(after=cursor.after, until=until, at=now, seen=tuple(seen))
    return TailCursor(after=cursor.after, until=cursor.until, at=cursor.at, seen=tuple(seen))


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
    """The request log's filters (forms.LogFilterForm parses them from the query string)."""

    connection: str = ""
    vendor: str = ""
    operation: str = ""
    outcome: str = ""
    status: str = ""  # "4xx", "429" or "none" (no answer)
    error_code: str = ""  # exact, or NO_ERROR_CODE
    request_id: str = ""  # the vendor's request id, exact match
    application: str = ""  # the proxy's application (exact name)
    since: datetime | None = None
    until: datetime | None = None
    tail: bool = False

    def as_params(self) -> dict[str, str]:
        params = {name: getattr(self, name) for name in ("connection", "vendor", "operation", "outcome", "status",
                                                          "error_code", "request_id", "application")}
        for name in ("since", "until"):
            value = getattr(self, name)
            if value:
                params[name] = timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")
        if self.tail:
            params["tail"] = "1"
        return {k: v for k, v in params.items() if v}

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
        if self.application:
            qs = qs.filter(application=self.application)
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


def _connection_names() -> tuple[dict[int, str], set[int]]:
    """Every connection's name, archived ones included (their rows stay in the log), and which
    of them are archived."""
    rows = Connection.with_archived.order_by("name").values_list("id", "name", "archived_at")
    names, archived = {}, set()
    for pk, name, archived_at in rows:
        names[pk] = name
        if archived_at is not None:
            archived.add(pk)
    return names, archived


@dataclass
class LogPage:
    rows: list[RequestLog]  # each with .connection_name
    next_before: str | None  # the cursor of the next older page, if any
    is_tail: bool  # rows recorded since `tail_after`
    tail_cursor: str | None  # where a live tail polls from (TailCursor.encode(); None: no tail)
    connection_names: list[str] = field(default_factory=list)  # live connections
    archived_names: list[str] = field(default_factory=list)  # their history stays searchable


def request_log_page(*, filters: LogFilters, before: str | None = None, tail_after: str | int | None = None,
                     page_size: int = LOG_PAGE_SIZE) -> LogPage:
    """Newest first. `before` (a cursor) loads older rows; `tail_after` (a tail cursor, see
    TailCursor) rows recorded since.

    Two queries: the connections (names for the filter and the rows) and one page of rows
    read through the (started_at, id) indexes; a third (max id) starts a live tail. On PostgreSQL
    (a partition per day) the page is looked for in the last day before the cursor, then the last
    8 days, then everywhere: a page of recent rows never plans or touches every partition, and a
    rare filter costs two more queries at most.
    """
    names, archived = _connection_names()
    ids = {name: pk for pk, name in names.items()}
    qs = filters.apply(RequestLog.objects.only(*_LOG_LIST_FIELDS), connection_id=ids.get(filters.connection))
    tail_cursor = None
    tail = decode_tail(tail_after) if tail_after is not None else None
    if tail_after is not None and tail is None:
        tail = TailCursor(after=0)  # a broken cursor: nothing is shown twice, nothing older than a day
    if tail is not None:
        # Rows inserted since the last poll, by id (rows are written when an attempt ends, so an
        # earlier started_at can arrive later); shown newest first.
        # Rows are written when their attempt ends, minutes after it started at most: the last day
        # of partitions holds every row since the last poll.
        # A row's id may be lower than one shown before (ids reserved in blocks, above): the ids
        # shown since `after` are left out instead.
        found = qs.filter(id__gt=tail.after, started_at__gte=timezone.now() - TAIL_WINDOW)
        if tail.seen:
            found = found.exclude(id__in=tail.seen)
        rows = list(found.order_by("-id")[:page_size])
        rows.sort(key=lambda r: (r.started_at, r.pk), reverse=True)
        more = False
        tail_cursor = _next_tail(tail, [r.pk for r in rows], full=len(rows) >= page_size).encode()
    else:
        cursor = decode_cursor(before)
        if cursor:
            at, pk = cursor
            # started_at <= at keeps the scan on the index; the OR excludes the rows already shown.
            qs = qs.filter(started_at__lte=at).filter(Q(started_at__lt=at) | Q(id__lt=pk))
        ceiling = cursor[0] if cursor else timezone.now()
        windows = PAGE_WINDOWS if db_connection.vendor == "postgresql" else (None,)
        for window in windows:
            found = qs if window is None else qs.filter(started_at__gte=ceiling - window)
            rows = list(found.order_by("-started_at", "-id")[: page_size + 1])
            if len(rows) > page_size:
                break
        more = len(rows) > page_size
        rows = rows[:page_size]
        if filters.tail and not before:
            last = (RequestLog.objects.filter(started_at__gte=timezone.now() - TAIL_WINDOW).order_by("-id")
                    .values_list("id", flat=True).first() or 0)
            tail_cursor = _next_tail(TailCursor(after=last), [], full=False).encode()
    for row in rows:
        row.connection_name = names.get(row.connection_id, "?")
    next_before = encode_cursor(rows[-1].started_at, rows[-1].pk) if more and rows else None
    return LogPage(rows=rows, next_before=next_before, is_tail=tail is not None, tail_cursor=tail_cursor,
                   connection_names=[name for pk, name in names.items() if pk not in archived],
                   archived_names=[name for pk, name in names.items() if pk in archived])


def request_detail(*, pk: int) -> dict:
    """One attempt with its retry chain (same chain_id). Two queries."""
    log = get_object_or_404(RequestLog.objects.select_related("connection"), pk=pk)
    chain = list(RequestLog.objects.filter(chain_id=log.chain_id).only(*_LOG_LIST_FIELDS, "chain_id", "retry_after")
                 .order_by("started_at", "attempt", "id"))
    provider = PROVIDERS.get(log.provider)
    details = log.error_details if isinstance(log.error_details, dict) else {"details": log.error_details}
    missing = details.get("missingInputVars")
    return {
        "log": log,
        "connection": log.connection,
        "provider": provider,
        "chain": chain,
        "missing_input_vars": missing if isinstance(missing, list) else ([missing] if missing else []),
        "other_details": {k: v for k, v in details.items() if k not in ("missingInputVars", "support_until")},
    }


# -- error history --------------------------------------------------------------------------

ERROR_RANGES = {"24h": (timedelta(hours=24), "hour"), "7d": (timedelta(days=7), "day"),
                "30d": (timedelta(days=30), "day")}


def _buckets(since: datetime, now: datetime, unit: str) -> list[datetime]:
    local_since, local_now = timezone.localtime(since), timezone.localtime(now)
    if unit == "hour":
        start = local_since.replace(minute=0, second=0, microsecond=0)
        count = int((local_now - start) // timedelta(hours=1)) + 1
        return [timezone.localtime(start + timedelta(hours=i)) for i in range(count)]
    days = (local_now.date() - local_since.date()).days + 1
    return [timezone.make_aware(datetime.combine(local_since.date() + timedelta(days=i), time())) for i in range(days)]


# The error categories of errors over time (the chart stacks them in this order).
ERROR_CATEGORIES = ("5xx", "4xx", "throttled", "network")


def _category(outcome: str, status: int) -> str:
    """The chart's category of an error: 429s and our own holds, network, 5xx, the rest."""
    if outcome == Outcome.THROTTLED or status == 429:
        return "throttled"
    if outcome in (Outcome.NETWORK_ERROR, Outcome.TIMEOUT):
        return "network"
    return "5xx" if status >= 500 else "4xx"


@dataclass
class ErrorHistory:
    connection: Connection | None
    range_key: str
    vendor: str
    since: datetime
    unit: str  # "hour" or "day": the buckets' size
    buckets: list[datetime]
    series: dict[str, list[int]]  # per category of ERROR_CATEGORIES, a count per bucket
    groups: list[dict]  # provider, outcome, status_code, error_code, count, first_seen, last_seen, ...
    ranges: tuple[str, ...] = tuple(ERROR_RANGES)

    @property
    def total(self) -> int:
        return sum(sum(v) for v in self.series.values())


def error_history(*, connection: Connection | None = None, range_key: str = "7d", vendor: str = "",
                  now: datetime | None = None) -> ErrorHistory:
    """Errors over time (per bucket and category) and grouped by status and vendor error code.

    Two queries over the error rollups (rollups.ErrorRollup: per connection and hour for 24 h, per
    UTC day for 7 and 30 days), whatever the size of the log. A range starts at the start of its
    first bucket: "7d" is the 7 days before today and today so far (UTC days).
    """
    now = now or timezone.now()
    range_key = range_key if range_key in ERROR_RANGES else "7d"
    span, unit = ERROR_RANGES[range_key]
    vendor = vendor if vendor in PROVIDERS and connection is None else ""
    if unit == "hour":
        since = (now - span).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        buckets = _buckets(since, now, "hour")
        qs = ErrorRollup.objects.filter(span=rollups.HOUR, bucket__gte=since, bucket__lte=now)
    else:
        utc_now = now.astimezone(UTC)
        since = datetime.combine(utc_now.date() - span, time(), UTC)
        buckets = [since + timedelta(days=i) for i in range(span.days + 1)]
        qs = ErrorRollup.objects.filter(span=rollups.DAY, bucket__gte=since, bucket__lte=now)
    if connection is not None:
        qs = qs.filter(connection_id=connection.pk)
    elif vendor:
        qs = qs.filter(provider=vendor)
    index = {b: i for i, b in enumerate(buckets)}
    series = {key: [0] * len(buckets) for key in ERROR_CATEGORIES}
    for bucket, outcome, status, n in (qs.values("bucket", "outcome", "status_code").annotate(n=Sum("count"))
                                       .order_by().values_list("bucket", "outcome", "status_code", "n")):
        i = index.get(bucket)
        if i is not None:
            series[_category(outcome, status)][i] += n
    groups = list(
        qs.values("provider", "outcome", "status_code", "error_code")
        .annotate(count=Sum("count"), first_seen=Min("first_seen"), last_seen=Max("last_seen"),
                  connections=Count("connection_id", distinct=True), latest_id=Max("latest_id"),
                  message=Max("message"))
        .order_by("-count", "-last_seen")[:100]
    )
    for g in groups:
        g["status_code"] = g["status_code"] or None  # 0 in the rollup: no answer
    return ErrorHistory(connection=connection, range_key=range_key, vendor=vendor, since=since, unit=unit,
                        buckets=buckets, series=series, groups=groups)
