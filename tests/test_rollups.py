"""Rollups (connections/rollups.py): exact for any inserts, the current bucket included, and the
overview that reads them runs the same queries at 20 and 200 connections."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connections import rollups, selectors
from connections.models import Connection, ErrorRollup, RequestLog, RequestRollup
from tests.factories import ConnectionFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db]

OUTCOMES = [("ok", 200), ("ok", 204), ("http_error", 503), ("http_error", 404), ("http_error", 429),
            ("throttled", 429), ("throttled", None), ("timeout", None), ("network_error", None), ("http_error", 302)]


def _floor(at, span):
    at = at.astimezone(UTC)
    if span == "m":
        return at.replace(second=0, microsecond=0)
    if span == "h":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def expected_from_log():
    """The rollups, counted in Python from the request log's rows."""
    counts, errors = Counter(), Counter()
    for r in RequestLog.objects.all():
        s = r.status_code
        flags = {"total": 1, "ok": r.outcome == "ok", "http_error": r.outcome == "http_error",
                 "network_error": r.outcome == "network_error", "timeout": r.outcome == "timeout",
                 "throttled": r.outcome == "throttled", "limited": r.outcome == "throttled" or s == 429,
                 "status_2xx": s is not None and 200 <= s < 300, "status_3xx": s is not None and 300 <= s < 400,
                 "status_4xx": s is not None and 400 <= s < 500, "status_5xx": s is not None and 500 <= s < 600,
                 "status_429": s == 429, "no_status": s is None, "duration_sum": r.duration_ms}
        for span in ("m", "h"):
            for name, value in flags.items():
                counts[(r.connection_id, span, _floor(r.started_at, span), name)] += int(value)
        if r.outcome != "ok":
            for span in ("h", "d"):
                errors[(r.connection_id, span, _floor(r.started_at, span), r.outcome, s or 0, r.error_code)] += 1
    return +counts, +errors


def stored():
    counts, errors = Counter(), Counter()
    for r in RequestRollup.objects.all():
        for name in rollups._COUNTS:
            counts[(r.connection_id, r.span, r.bucket, name)] += getattr(r, name)
    for e in ErrorRollup.objects.all():
        errors[(e.connection_id, e.span, e.bucket, e.outcome, e.status_code, e.error_code)] += e.count
    return +counts, +errors


rows_strategy = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(OUTCOMES), st.integers(0, 10_000),
                                   st.integers(0, 5000), st.sampled_from(["", "E1", "rate_limited"]),
                                   st.booleans()), min_size=1, max_size=40)


class TestRollupsAreExact:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(rows=rows_strategy)
    def test_rollups_equal_the_counts_of_the_log(self, rows):
        RequestLog.objects.all().delete()
        RequestRollup.objects.all().delete()
        ErrorRollup.objects.all().delete()
        Connection.objects.all().delete()
        conns = [ConnectionFactory(name=f"c{i}") for i in range(3)]
        now = timezone.now()
        bulk = []
        for conn, (outcome, status), ago, ms, code, one_by_one in rows:
            values = {"connection": conns[conn], "provider": "clever", "operation": "call", "method": "GET",
                      "path": "/x", "started_at": now - timedelta(seconds=ago), "duration_ms": ms,
                      "status_code": status, "outcome": outcome, "error_code": code if outcome != "ok" else "",
                      "error_message": f"message {ms}"}
            if one_by_one:  # the client's way: one INSERT per attempt
                RequestLog.objects.create(**values)
            else:
                bulk.append(RequestLog(**values))
        RequestLog.objects.bulk_create(bulk)
        assert stored() == expected_from_log()
        maxima = {(r.connection_id, r.span, r.bucket): r.duration_max for r in RequestRollup.objects.all()}
        for r in RequestLog.objects.all():
            assert maxima[(r.connection_id, "h", _floor(r.started_at, "h"))] >= r.duration_ms
        # rebuild() (after a COPY that bypassed the trigger) gives the same numbers.
        before = stored()
        rollups.rebuild(since=now - timedelta(hours=3))
        assert stored() == before

    def test_the_overview_counts_the_current_minute(self, viewer_client):
        c = ConnectionFactory(name="busy")
        now = timezone.now()
        RequestLog.objects.bulk_create([RequestLog(connection=c, provider="clever", operation="call", method="GET",
                                                   path="/", started_at=now - timedelta(seconds=i), status_code=code,
                                                   outcome="ok" if code == 200 else "http_error")
                                        for i, code in enumerate([200, 200, 500, 429, 200])])
        row = selectors.overview()["rows"][0]
        assert (row.stats.total, row.stats.failed, row.stats.last_hour) == (5, 2, 5)
        assert row.stats.throttled_last_hour == 1
        assert "2 / 5" in viewer_client.get("/").content.decode()
        # One more row, written now: the page says so at once (no task has to run first).
        RequestLog.objects.create(connection=c, provider="clever", operation="call", method="GET", path="/",
                                  status_code=503, outcome="http_error")
        assert "3 / 6" in viewer_client.get("/").content.decode()

    def test_error_history_groups_come_from_the_rollups(self, viewer_client):
        c = ConnectionFactory(name="flaky")
        RequestLog.objects.bulk_create([RequestLog(connection=c, provider="clever", operation="call", method="GET",
                                                   path="/", status_code=503, outcome="http_error",
                                                   error_code="unavailable", error_message="Down for maintenance")
                                        for _ in range(4)])
        history = selectors.error_history(range_key="30d")
        assert history.total == 4
        [group] = history.groups
        assert (group["count"], group["status_code"], group["connections"]) == (4, 503, 1)
        assert group["latest_id"] == RequestLog.objects.order_by("-id").first().pk
        assert "Down for maintenance" in viewer_client.get("/errors/?range=30d").content.decode()


class TestOverviewAtScale:
    def _connections(self, n: int, start: int = 0):
        Connection.objects.bulk_create([
            Connection(name=f"conn-{i:04d}", provider=["clever", "cleverbridge", "cloverdx"][i % 3],
                       base_url="https://api.example.com", health="failing" if i % 50 == 7 else "ok")
            for i in range(start, start + n)])
        RequestLog.objects.bulk_create([
            RequestLog(connection=c, provider=c.provider, operation="test", method="GET", path="/",
                       started_at=timezone.now() - timedelta(minutes=m), status_code=200, outcome="ok")
            for c in Connection.objects.all() for m in (1, 90)])

    def test_the_same_queries_at_20_and_200_connections(self, viewer_client):
        counts = []
        for n in (20, 180):
            self._connections(n, start=Connection.objects.count())
            viewer_client.get("/")
            with CaptureQueriesContext(db_connection) as ctx:
                response = viewer_client.get("/")
            assert response.status_code == 200
            counts.append(len(ctx.captured_queries))
        assert counts[0] == counts[1], counts

    def test_problems_come_first_and_the_rest_is_a_page_away(self, viewer_client):
        self._connections(120)
        body = viewer_client.get("/").content.decode()
        failing = [f"conn-{i:04d}" for i in range(120) if i % 50 == 7]
        assert re.findall(r'<tr id="overview-([\w-]+)"', body)[:4] == [*failing, "conn-0000"]
        assert "Connections 1–25 of 120" in body and 'href="?page=2"' in body
        page5 = viewer_client.get("/?page=5").content.decode()
        assert "Connections 101–120 of 120" in page5 and "conn-0119" in page5 and "conn-0008" not in page5
        # A page past the end (connections were deleted meanwhile) shows the last one.
        assert "Connections 101–120 of 120" in viewer_client.get("/?page=9").content.decode()


@pytest.mark.django_db(transaction=True)
class TestOneRoundTripLogRow:
    """The client's log row outside a transaction (PostgreSQL): one statement, same row, counted."""

    def test_the_fast_insert_writes_what_the_orm_writes(self, vendors):
        from connections.outbound.client import RequestSpec, send
        from connections.services.audit import Actor
        from tests import factories

        connection = factories.connection("clever", sandbox=vendors)
        actor = Actor(label="bench", via="system")
        with CaptureQueriesContext(db_connection) as ctx:
            fast = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=actor)
        # (the ids' reservation on a new connection also prepares the INSERT: logrows._next_id)
        inserts = [q["sql"] for q in ctx.captured_queries if "INSERT INTO" in q["sql"] and "requestlog" in q["sql"]
                   and not q["sql"].startswith("SELECT nextval")]
        assert len(inserts) == 1 and inserts[0].startswith("WITH durability")
        assert not [q for q in ctx.captured_queries if "SAVEPOINT" in q["sql"] or q["sql"] == "COMMIT"]
        from django.db import transaction

        with transaction.atomic():  # inside a caller's transaction: the ORM path, in a savepoint
            orm = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=actor)
        a, b = (RequestLog.objects.filter(pk=r.log_ids[0]).values().get() for r in (fast, orm))
        for key in ("id", "chain_id", "started_at", "duration_ms", "response_excerpt", "vendor_request_id",
                    "rate_limit"):
            a.pop(key), b.pop(key)
        assert a == b and a["outcome"] == "ok" and a["connection_id"] == connection.pk
        hour = RequestRollup.objects.get(connection=connection, span="h")
        assert (hour.total, hour.ok) == (2, 2)
