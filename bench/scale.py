"""Switchboard at scale (issue 18), ratios in one run:

    .venv/bin/python bench/scale.py [--rows 1000000] [--grow-to 10000000] [--repeat 9] [--keep]

Its own PostgreSQL database (BENCH_DATABASE_URL, default .../bench_sb_scale), created, migrated
(the request log partitioned by day, rollups kept by the trigger) and dropped at the end unless
--keep. Rows are written by COPY with the trigger off (session_replication_role = replica), then
the rollups are rebuilt in one statement per kind (rollups.rebuild): how long both take is printed.

1. Log pages (first page, two filtered pages) against Django admin's changelist on the same data,
   at --rows and again at --grow-to rows: ratio (goal >= 20x at the larger size) and growth of our
   pages between the two sizes (goal <= 1.2x).
2. Error history, 30 days, against its own SQL replayed through a bare cursor (goal <= 2x), and
   against the SQL it ran before rollups (the aggregate over the log's error rows), for scale.
3. Overview at 200 and at 2,000 connections (the extra 1,800 get a day of rollups and a minute of
   log rows: what a test a minute writes), against a signed-in empty overview in the same run (goal
   <= 5x) and its growth 200 -> 2,000 (goal <= 3x).
4. Retention of one day's rows at the larger size: batched DELETE (5,000 a transaction, as SQLite
   does) of one day against DROP TABLE of another day's partition; the time each takes, the longest
   transaction (lock held), and the worst insert latency a concurrent writer saw meanwhile.

Prints results only; asserts nothing. The machine (2 cores shared with other work) shows in the
figures: run twice and compare before trusting a single ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pages import COLUMNS, PROVIDERS, configure, copy_rows, create_database, drop_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_sb_scale"
DAYS = 30


def median_ms(fn, repeat: int) -> float:
    for _ in range(2):
        fn()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def partitions_for_days(days: int) -> None:
    from connections import partitions

    today = datetime.now(UTC).date()
    for i in range(days + 1):
        partitions.ensure_partitions(today=today - timedelta(days=i), days_ahead=0)
    partitions.ensure_partitions()


def rebuild_and_analyze() -> tuple[float, float]:
    from django.db import connection

    from connections import rollups

    began = time.perf_counter()
    rollups.rebuild()
    rebuilt = time.perf_counter() - began
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE connections_requestlog")
        cursor.execute("ANALYZE connections_requestrollup")
        cursor.execute("ANALYZE connections_errorrollup")
        cursor.execute("ANALYZE connections_connection")
    return rebuilt, time.perf_counter() - began


class Pages:
    def __init__(self, repeat: int):
        from django.contrib.auth.models import User
        from django.test import Client

        user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
            "bench", password="bench-password-not-secret")
        self.client = Client()
        self.client.force_login(user)
        self.repeat = repeat

    def get(self, path: str, **headers):
        def run():
            response = self.client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code)
            return response
        return run

    def queries(self, path: str) -> list[str]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            self.get(path)()
        return [q["sql"] for q in ctx.captured_queries]

    def raw_ms(self, path: str) -> float:
        """The page's own data queries (not the session, user and permission look-ups), replayed."""
        from django.db import connection

        own = [q for q in self.queries(path) if "connections_" in q and "auth_" not in q and "django_session" not in q]

        def run():
            with connection.cursor() as cursor:
                for q in own:
                    cursor.execute(q)
                    cursor.fetchall()
        return median_ms(run, self.repeat)

    def ms(self, path: str, repeat: int | None = None) -> float:
        return median_ms(self.get(path), repeat or self.repeat)


LOG_PAGES = {
    "log, first page": ("/log/", "/admin/connections/requestlog/"),
    "log, vendor + outcome": ("/log/?vendor=teletracker&outcome=http_error",
                              "/admin/connections/requestlog/?provider__exact=teletracker&outcome__exact=http_error"),
    "log, connection + 5xx": ("/log/?connection=conn-0007&status=5xx", None),
}
OLD_ERROR_SQL = (  # what the error history ran over the log before rollups (30 days, all connections)
    "SELECT provider, outcome, status_code, error_code, COUNT(id), MIN(started_at), MAX(started_at), "
    "COUNT(DISTINCT connection_id), MAX(id), MAX(error_message) FROM connections_requestlog "
    "WHERE outcome IN ('http_error', 'network_error', 'timeout', 'throttled') AND started_at >= %s "
    "GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 100")


def measure_log(pages: Pages, admin_repeat: int) -> dict:
    out = {}
    for label, (path, admin) in LOG_PAGES.items():
        ours = pages.ms(path)
        out[label] = {"ours_ms": ours, "raw_ms": pages.raw_ms(path),
                      "admin_ms": pages.ms(admin, admin_repeat) if admin else None}
    return out


def measure_errors(pages: Pages) -> dict:
    from django.db import connection

    ours, raw = pages.ms("/errors/?range=30d"), pages.raw_ms("/errors/?range=30d")
    since = datetime.now(UTC) - timedelta(days=30)

    def old():
        with connection.cursor() as cursor:
            cursor.execute(OLD_ERROR_SQL, [since])
            cursor.fetchall()
    return {"ours_ms": ours, "raw_ms": raw, "old_sql_ms": median_ms(old, max(3, pages.repeat // 3))}


def add_connections(n: int, start: int) -> None:
    """n more connections, each with a day of traffic as the rollups hold it (a test a minute, one
    error an hour) and its last minute in the log."""
    from django.db import connection

    from connections.models import Connection

    now = datetime.now(UTC)
    Connection.objects.bulk_create([Connection(name=f"conn-{i:04d}", provider=PROVIDERS[i % 5],
                                               base_url="https://api.example.com", health="ok", last_test_at=now)
                                    for i in range(start, start + n)])
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "INSERT INTO connections_requestrollup (connection_id, span, bucket, total, ok, http_error, network_error, "
            "timeout, throttled, limited, status_2xx, status_3xx, status_4xx, status_5xx, status_429, no_status, "
            "duration_sum, duration_max) "
            "SELECT c.id, s.span, s.bucket, s.n, s.n - s.e, s.e, 0, 0, 0, 0, s.n - s.e, 0, 0, s.e, 0, 0, s.n * 40, 90 "
            "FROM connections_connection c CROSS JOIN ("
            "  SELECT 'h' AS span, date_trunc('hour', now()) - g * interval '1 hour' AS bucket, 60 AS n, 1 AS e "
            "  FROM generate_series(0, 24) g UNION ALL "
            "  SELECT 'm', date_trunc('minute', now()) - g * interval '1 minute', 1, 0 FROM generate_series(0, 119) g"
            ") s WHERE c.name >= %s ON CONFLICT DO NOTHING", [f"conn-{start:04d}"])
        cursor.execute(
            f"INSERT INTO connections_requestlog ({COLUMNS}) SELECT c.id, c.provider, 'test', 'GET', '/', "
            "gen_random_uuid(), 1, now() - interval '20 seconds', 40, 200, 'ok', '', '', '', '{}', '{}', '', '', "
            "'application/json', 'schedule', '', '', '' FROM connections_connection c WHERE c.name >= %s",
            [f"conn-{start:04d}"])
        cursor.execute("SET session_replication_role = origin")
        cursor.execute("ANALYZE connections_connection")
        cursor.execute("ANALYZE connections_requestrollup")


def writer(stop: threading.Event, latencies: list[float], connection_id: int, url: str) -> None:
    """A concurrent writer: one request log row every 5 ms into today's partition, timing each insert."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            began = time.perf_counter()
            conn.execute(f"INSERT INTO connections_requestlog ({COLUMNS}) VALUES (%s, 'clever', 'call', 'GET', '/w', "
                         "gen_random_uuid(), 1, now(), 1, 200, 'ok', '', '', '', '{}', '{}', '', '', '', 'user', '', '', '')",
                         [connection_id])
            latencies.append((time.perf_counter() - began) * 1000)
            time.sleep(0.005)


def retention(url: str, batch: int = 5000) -> dict:
    """One day deleted in batches, another dropped as a partition, each with a writer running."""
    import psycopg

    from connections import partitions
    from connections.models import Connection

    today = datetime.now(UTC).date()
    delete_day, drop_day = today - timedelta(days=20), today - timedelta(days=19)
    writer_conn = Connection.objects.order_by("pk").first().pk
    out = {}
    with psycopg.connect(url, autocommit=True) as conn:
        def count(day) -> int:
            start = datetime.combine(day, datetime.min.time(), UTC)
            return conn.execute("SELECT count(*) FROM connections_requestlog WHERE started_at >= %s AND started_at < %s",
                                [start, start + timedelta(days=1)]).fetchone()[0]

        for kind, day in (("batched DELETE", delete_day), ("DROP partition", drop_day)):
            rows = count(day)
            stop, latencies = threading.Event(), []
            thread = threading.Thread(target=writer, args=(stop, latencies, writer_conn, url))
            thread.start()
            time.sleep(1.0)
            baseline = statistics.median(latencies) if latencies else 0.0
            longest, statements = 0.0, 0
            began = time.perf_counter()
            start = datetime.combine(day, datetime.min.time(), UTC)
            if kind == "DROP partition":
                t0 = time.perf_counter()
                with conn.transaction():
                    conn.execute(f"SET LOCAL lock_timeout = '{partitions.LOCK_TIMEOUT}'")
                    conn.execute(f"DROP TABLE {partitions.day_table(day)}")
                longest, statements = time.perf_counter() - t0, 1
            else:
                while True:
                    t0 = time.perf_counter()
                    # By id within the day (as retention does on SQLite). Not by ctid through the
                    # parent: a ctid is only unique within one partition.
                    end = start + timedelta(days=1)
                    n = conn.execute(
                        "DELETE FROM connections_requestlog WHERE started_at >= %s AND started_at < %s AND id IN "
                        "(SELECT id FROM connections_requestlog WHERE started_at >= %s AND started_at < %s LIMIT %s)",
                        [start, end, start, end, batch]).rowcount
                    longest, statements = max(longest, time.perf_counter() - t0), statements + 1
                    if n < batch:
                        break
            elapsed = time.perf_counter() - began
            time.sleep(0.5)
            stop.set()
            thread.join()
            out[kind] = {"rows": rows, "seconds": elapsed, "statements": statements, "longest_lock_ms": longest * 1000,
                         "writer_median_ms": baseline, "writer_worst_ms": max(latencies) if latencies else None,
                         "left": count(day)}
    return out


def report_log(results: dict, small: int, large: int | None) -> None:
    print(f"\n{'log page':26} {'rows':>11} {'ours ms':>8} {'raw ms':>7} {'admin ms':>9} {'admin/ours':>10}")
    for size, rows in results.items():
        for label, r in rows.items():
            admin, ours = r["admin_ms"], r["ours_ms"]
            print(f"{label:26} {size:>11,} {ours:8.1f} {r['raw_ms']:7.2f} "
                  f"{(f'{admin:9.1f}' if admin else '        -')} {(f'{admin / ours:9.1f}x' if admin else '         -')}")
    top = results[large or small]
    for label, r in top.items():
        if r["admin_ms"]:
            ratio = r["admin_ms"] / r["ours_ms"]
            print(f"  {label}: {ratio:.1f}x faster than admin at {large or small:,} rows "
                  f"({'met' if ratio >= 20 else 'NOT met'}: >= 20x)")
    if large:
        for label in top:
            growth = results[large][label]["ours_ms"] / results[small][label]["ours_ms"]
            print(f"  {label}: {growth:.2f}x from {small:,} to {large:,} rows ({'met' if growth <= 1.2 else 'NOT met'}: <= 1.2x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--grow-to", type=int, default=0, help="then grow the log to this many rows and measure again")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--overview-connections", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    configure(url)
    create_database(url)
    import django

    django.setup()
    from django.core.management import call_command

    figures: dict = {"machine": f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start"}
    try:
        call_command("migrate", verbosity=0)
        partitions_for_days(DAYS + 1)
        pages = Pages(args.repeat)
        empty = pages.ms("/")  # the signed-in overview with nothing in it
        from connections.models import Connection

        Connection.objects.bulk_create([
            Connection(name=f"conn-{i:04d}", provider=PROVIDERS[i % 5], base_url="https://api.example.com",
                       health=random.Random(i).choice(["ok"] * 8 + ["degraded", "failing"]),
                       last_test_at=datetime.now(UTC)) for i in range(args.connections)])
        conns = list(Connection.objects.order_by("pk").values_list("pk", "provider"))
        now = time.time()
        sizes = [args.rows] + ([args.grow_to] if args.grow_to > args.rows else [])
        log_results, written, fill = {}, 0, {}
        for n, size in enumerate(sizes):
            copy_s = copy_rows(conns, size - written, seed=n + 1, start=now - DAYS * 86400, span=DAYS * 86400 - 60)
            written = size
            rebuild_s, analyze_s = rebuild_and_analyze()
            fill[size] = {"copy_s": copy_s, "rollups_s": rebuild_s, "vacuum_analyze_s": analyze_s}
            print(f"{size:,} rows: COPY {copy_s:.1f} s, rollups rebuilt {rebuild_s:.1f} s, VACUUM ANALYZE "
                  f"{analyze_s:.1f} s", flush=True)
            log_results[size] = measure_log(pages, max(3, args.repeat // 3))
            figures.setdefault("errors", {})[size] = measure_errors(pages)
        report_log(log_results, sizes[0], sizes[1] if len(sizes) > 1 else None)
        for size, e in figures["errors"].items():
            ratio = e["ours_ms"] / e["raw_ms"]
            print(f"\nerror history, 30 days, {size:,} rows: {e['ours_ms']:.1f} ms; its SQL {e['raw_ms']:.2f} ms "
                  f"({ratio:.1f}x; {'met' if ratio <= 2 else 'NOT met'}: <= 2x); the pre-rollup SQL over the log "
                  f"{e['old_sql_ms']:.1f} ms")
        overview = {args.connections: pages.ms("/")}
        add_connections(args.overview_connections - args.connections, args.connections)
        overview[args.overview_connections] = pages.ms("/")
        big, small = overview[args.overview_connections], overview[args.connections]
        print(f"\noverview: signed-in empty {empty:.1f} ms; {args.connections} connections {small:.1f} ms; "
              f"{args.overview_connections} connections {big:.1f} ms")
        print(f"  {args.overview_connections} connections / empty page: {big / empty:.1f}x "
              f"({'met' if big / empty <= 5 else 'NOT met'}: <= 5x)")
        print(f"  growth {args.connections} -> {args.overview_connections}: {big / small:.2f}x "
              f"({'met' if big / small <= 3 else 'NOT met'}: <= 3x)")
        print(f"  queries: {len(pages.queries('/'))} at {args.overview_connections} connections")
        kept = retention(url)
        print(f"\nretention of one day's rows at {written:,} rows (a writer inserting every 5 ms meanwhile):")
        for kind, r in kept.items():
            print(f"  {kind:15} {r['rows']:>9,} rows in {r['seconds']:7.2f} s, {r['statements']} statement(s), "
                  f"longest {r['longest_lock_ms']:8.1f} ms; writer median {r['writer_median_ms']:.2f} ms, worst "
                  f"{r['writer_worst_ms']:.1f} ms; rows left {r['left']}")
        figures.update({"fill": fill, "log": log_results, "overview": {"empty": empty, **overview},
                        "retention": kept})
        print("\n" + json.dumps(figures, default=str))
        return 0
    finally:
        if not args.keep:
            drop_database(url)
            print("bench database dropped")


if __name__ == "__main__":
    sys.exit(main())
