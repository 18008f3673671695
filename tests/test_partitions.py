"""The request log's day partitions on PostgreSQL (connections/partitions.py): created ahead by the
hourly task, dropped (not deleted) by retention, invisible to the log page's keyset pagination."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections import partitions
from connections.models import RequestLog
from connections.retention import maintain_request_log
from tests.factories import ConnectionFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def where(pk: int) -> str:
    """The partition (table) a request log row is stored in."""
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM connections_requestlog WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def log(conn, at, outcome="ok", status=200, path="/x") -> RequestLog:
    return RequestLog.objects.create(connection=conn, provider=conn.provider, operation="call", method="GET",
                                     path=path, started_at=at, status_code=status, outcome=outcome)


@pytest.fixture
def conn():
    assert partitions.is_partitioned(), "the migrations partition the request log on PostgreSQL"
    return ConnectionFactory(name="parted")


class TestPartitionMaintenance:
    def test_days_ahead_are_created_and_rows_land_in_their_day(self, conn):
        today = datetime.now(UTC).date()
        maintain_request_log()
        days = partitions.day_partitions()
        assert all(today + timedelta(days=i) in days for i in range(partitions.DAYS_AHEAD + 1))
        assert days[today] == {"ok", "err"}
        ok = log(conn, timezone.now())
        failed = log(conn, timezone.now(), outcome="http_error", status=503)
        assert where(ok.pk) == f"connections_requestlog_p{today:%Y%m%d}_ok"
        assert where(failed.pk) == f"connections_requestlog_p{today:%Y%m%d}_err"
        # A row no day partition covers is kept, in the default partition: never lost.
        ancient = log(conn, timezone.now() - timedelta(days=400))
        assert where(ancient.pk) == "connections_requestlog_default"

    def test_retention_drops_expired_days_instead_of_deleting_rows(self, conn, settings):
        settings.LOG_RETENTION_DAYS = 30
        settings.ERROR_LOG_RETENTION_DAYS = 90
        now = timezone.now()
        old, older = (now - timedelta(days=40)).date(), (now - timedelta(days=100)).date()
        for day in (old, older):
            partitions.ensure_partitions(today=day, days_ahead=0)
        noon = lambda d: datetime.combine(d, datetime.min.time(), UTC) + timedelta(hours=12)  # noqa: E731
        kept_error = log(conn, noon(old), outcome="http_error", status=500, path="/kept-error")
        log(conn, noon(old), path="/old-ok")
        log(conn, noon(older), outcome="timeout", status=None, path="/older-error")
        log(conn, noon(older), path="/older-ok")
        recent = log(conn, now - timedelta(days=1), path="/recent")
        with db_connection.cursor() as cursor:  # the test's transaction: run the deferred FK checks now
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with CaptureQueriesContext(db_connection) as ctx:
            result = maintain_request_log(now=now)
        statements = [q["sql"] for q in ctx.captured_queries]
        assert not [q for q in statements if q.startswith("DELETE FROM connections_requestlog ")]
        assert f"DROP TABLE connections_requestlog_p{old:%Y%m%d}_ok" in statements
        assert f"DROP TABLE connections_requestlog_p{older:%Y%m%d}" in statements
        # Detached first (the parent's lock for a catalogue change only), dropped after.
        detach = f"ALTER TABLE connections_requestlog DETACH PARTITION connections_requestlog_p{older:%Y%m%d}"
        assert statements.index(detach) < statements.index(f"DROP TABLE connections_requestlog_p{older:%Y%m%d}")
        assert result["partitions_dropped"] == 2
        assert set(RequestLog.objects.values_list("path", flat=True)) == {"/kept-error", "/recent"}
        assert where(kept_error.pk).endswith("_err") and RequestLog.objects.filter(pk=recent.pk).exists()
        days = partitions.day_partitions()
        assert older not in days and days[old] == {"err"}

    def test_a_busy_parent_is_left_for_the_next_run(self, conn, monkeypatch):
        # DDL that cannot take its lock within the timeout (or meets rows in the default partition)
        # is logged and skipped: maintenance never fails the task or blocks writers for long.
        monkeypatch.setattr(partitions, "create_day_sql", lambda day: ["SELECT no_such_function()"])
        assert partitions.ensure_partitions(today=datetime(2031, 1, 1, tzinfo=UTC).date(), days_ahead=0) == []


    def test_a_table_detached_but_not_dropped_is_dropped_next_time(self, conn):
        day = datetime(2020, 1, 1, tzinfo=UTC).date()
        partitions.ensure_partitions(today=day, days_ahead=0)
        with db_connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE connections_requestlog DETACH PARTITION {partitions.day_table(day)}")
        assert partitions._orphans() == [partitions.day_table(day)]
        maintain_request_log()
        assert partitions._orphans() == []


class TestKeysetPaginationAcrossPartitions:
    def test_older_pages_walk_every_partition_in_order(self, conn, viewer_client):
        now = timezone.now()
        for day_offset in (0, 1, 2):
            partitions.ensure_partitions(today=(now - timedelta(days=day_offset)).date(), days_ahead=0)
        rows = []
        for i in range(130):
            at = now - timedelta(hours=i * 0.5) if i % 10 else now - timedelta(days=500)  # some in the default
            rows.append(RequestLog(connection=conn, provider="clever", operation="call", method="GET",
                                   path=f"/p{i}", started_at=at, status_code=200 if i % 3 else 503,
                                   outcome="ok" if i % 3 else "http_error"))
        RequestLog.objects.bulk_create(rows)
        expected = list(RequestLog.objects.order_by("-started_at", "-id").values_list("id", flat=True))
        tables = {where(pk) for pk in expected}
        assert len(tables) >= 5  # ok and err halves of several days, and the default partition
        seen, url = [], "/log/"
        while url:
            body = viewer_client.get(url, headers={"HX-Request": "true"} if seen else {}).content.decode()
            seen += [int(pk) for pk in re.findall(r'href="/log/(\d+)/"', body)]
            older = re.search(r'hx-get="\?(before=[^"&]+)', body)
            url = f"/log/?{older.group(1)}" if older else ""
        assert seen == expected
