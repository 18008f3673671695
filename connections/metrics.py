"""Prometheus metrics: counters where things happen, gauges read from the database at scrape time.

Counters and the latency histogram are incremented by three hooks, each called from the one place
its rows are written: `request_logged` (connections/client.py, beside every RequestLog row),
`rotation_settled` (rotation/core.py journal_finish, every settled attempt) and `alert_delivered`
(tasks.deliver_alert, every delivery try). Gauges (health, rate-limit headroom) are the
database's latest values, read by DatabaseCollector when /metrics is scraped, so every process and
machine agrees on them.

Many processes (gunicorn workers, Celery pool processes) each count their own: with
PROMETHEUS_MULTIPROC_DIR set (`manage.py runall` and dashboard/gunicorn_config.py set it) each
writes its values to files there and /metrics sums them (prometheus_client's multiprocess mode).
Without it (tests, runserver) the counters live in the process. README.md, "Metrics".
Labels are connection names, vendor keys and fixed vocabularies: never a path, a message or a secret.
"""

from __future__ import annotations

import functools
import logging
import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)
CONNECTION = ["connection", "vendor"]

REQUESTS = Counter("switchboard_vendor_requests", "Outbound requests to vendors (one per attempt), by outcome "
                   "(ok, http_error, network_error, timeout, throttled) and status class (2xx ... 5xx, none)",
                   [*CONNECTION, "operation", "outcome", "status_class"])
RATE_LIMITED = Counter("switchboard_vendor_429", "Vendor answers with status 429 Too Many Requests", CONNECTION)
LATENCY = Histogram("switchboard_vendor_request_duration_seconds", "Time from sending a request to its answer "
                    "(requests actually sent)", CONNECTION,
                    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30))
ROTATIONS = Counter("switchboard_rotations", "Settled rotation attempts by outcome (succeeded, failed, "
                    "outcome_unknown, recovered)", [*CONNECTION, "kind", "outcome"])
DELIVERIES = Counter("switchboard_alert_deliveries", "Alert delivery tries by state (sent, failed: gave up, "
                     "retry: will try again)", [*CONNECTION, "channel_kind", "state"])


def _status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "none"


def _never_raise(hook):
    """A metric that cannot be counted (a full disk under PROMETHEUS_MULTIPROC_DIR) never fails the
    request, rotation or delivery it counts."""

    @functools.wraps(hook)
    def wrapper(*args, **kwargs):
        try:
            hook(*args, **kwargs)
        except Exception as exc:
            log.warning("metric %s not counted: %s", hook.__name__, type(exc).__name__)

    return wrapper


@_never_raise
def request_logged(fields: dict) -> None:
    """One outbound attempt was recorded (fields: the RequestLog row's)."""
    connection = fields["connection"]
    vendor = fields.get("provider") or connection.provider
    status = fields.get("status_code")
    _requests(connection.name, vendor, fields.get("operation") or "call", fields.get("outcome") or "",
              _status_class(status)).inc()
    if status == 429:
        RATE_LIMITED.labels(connection=connection.name, vendor=vendor).inc()
    if status is not None or fields.get("outcome") in ("network_error", "timeout"):
        _latency(connection.name, vendor).observe(max(0, fields.get("duration_ms") or 0) / 1000)


# The labelled series of the per-call metrics, looked up once per label set (labels() validates
# and builds its key on every call; this runs beside every outbound attempt).
@functools.lru_cache(maxsize=8192)
def _requests(connection: str, vendor: str, operation: str, outcome: str, status_class: str):
    return REQUESTS.labels(connection=connection, vendor=vendor, operation=operation, outcome=outcome,
                           status_class=status_class)


@functools.lru_cache(maxsize=4096)
def _latency(connection: str, vendor: str):
    return LATENCY.labels(connection=connection, vendor=vendor)


@_never_raise
def rotation_settled(attempt) -> None:
    connection = attempt.connection
    ROTATIONS.labels(connection=connection.name, vendor=connection.provider, kind=attempt.kind or "",
                     outcome=attempt.state).inc()


@_never_raise
def alert_delivered(delivery_id: int, state: str) -> None:
    from .models import AlertDelivery

    row = (AlertDelivery.objects.filter(pk=delivery_id)
           .values("channel__kind", "event__connection__name", "event__connection__provider").first())
    if row is None:
        return
    DELIVERIES.labels(connection=row["event__connection__name"] or "", vendor=row["event__connection__provider"] or "",
                      channel_kind=row["channel__kind"], state=state).inc()


class DatabaseCollector:
    """Gauges from each connection's row: health (one series per state, 1 for the current one),
    rate-limit limit and remaining (latest headers seen), blocked-until, and whether scheduled
    tests are paused."""

    def collect(self):
        from .models import Connection, Health

        health = GaugeMetricFamily("switchboard_connection_health", "1 for the connection's current health state",
                                   labels=[*CONNECTION, "state"])
        limit = GaugeMetricFamily("switchboard_rate_limit_limit", "Rate limit the vendor last announced",
                                  labels=CONNECTION)
        remaining = GaugeMetricFamily("switchboard_rate_limit_remaining", "Requests left in the vendor's window, "
                                      "as last announced", labels=CONNECTION)
        blocked = GaugeMetricFamily("switchboard_rate_limit_blocked_until_seconds", "Unix time until which the "
                                    "vendor blocks requests (0: not blocked)", labels=CONNECTION)
        enabled = GaugeMetricFamily("switchboard_connection_enabled", "1 when the connection is enabled",
                                    labels=CONNECTION)
        rows = Connection.objects.order_by("name").values_list("name", "provider", "health", "enabled", "rl_limit",
                                                                "rl_remaining", "blocked_until")
        for name, vendor, state, is_enabled, rl_limit, rl_remaining, blocked_until in rows:
            for choice in Health.values:
                health.add_metric([name, vendor, choice], 1 if choice == state else 0)
            enabled.add_metric([name, vendor], 1 if is_enabled else 0)
            if rl_limit is not None:
                limit.add_metric([name, vendor], rl_limit)
            if rl_remaining is not None:
                remaining.add_metric([name, vendor], rl_remaining)
            blocked.add_metric([name, vendor], blocked_until.timestamp() if blocked_until else 0)
        yield from (health, enabled, limit, remaining, blocked)


def exposition() -> bytes:
    """The text for /metrics: every process's counters (summed) and the database's gauges."""
    registry = CollectorRegistry()
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        for metric in (REQUESTS, RATE_LIMITED, LATENCY, ROTATIONS, DELIVERIES):
            registry.register(metric)
    registry.register(DatabaseCollector())
    return generate_latest(registry)
