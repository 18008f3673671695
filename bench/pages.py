"""Operations pages on a million-row request log (issue 6), in one run:

    .venv/bin/python bench/pages.py [--rows 1000000] [--connections 200] [--repeat 15] [--keep]

Creates its own throwaway PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/bench_switchboard), migrates it, fills it with COPY
(psycopg 3 `cursor.copy`), VACUUM ANALYZE, then times warm, median of --repeat runs:

- our pages through the Django test client as a signed-in user: the request log's first page,
  a filtered page and an "older" page, the overview and the error history;
- Django admin's changelist for RequestLog on the same data (first page and the same filter);
- the raw SQL of the same page: the data queries the page ran, replayed through a bare cursor.

Prints the ratios against the goals (log pages >= 10x faster than the admin changelist and
within 3x of the raw SQL; a constant query count for the overview at any number of connections)
and drops the database at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_switchboard"
PROVIDERS = ["cleverbridge", "clever", "cloverdx", "teletracker", "cleanlist"]
PATHS = {
    "cleverbridge": ["/subscription/getsubscription", "/urlgenerator/generateusersessionurl", "/connection/test"],
    "clever": ["/v3.0/districts", "/v3.0/users", "/v3.0/sections"],
    "cloverdx": ["/clover/api/rest/v1/executions?pageSize=1", "/clover/api/rest/v1/jobs"],
    "teletracker": ["/reports/call-data?date_from=2025-01-01", "/auth/login", "/campaigns"],
    "cleanlist": ["/api/pub_echo/", "/api/validate_email/", "/api/validate_phone/"],
}


COLUMNS = ("connection_id, provider, operation, method, path, chain_id, attempt, started_at, duration_ms, status_code, "
           "outcome, vendor_request_id, error_code, error_message, error_details, rate_limit, request_excerpt, "
           "response_excerpt, response_content_type, triggered_by, actor_label, task_id, application")


def configure(url: str) -> None:
    os.environ.update({
        "DATABASE_URL": url, "DEBUG": "false", "SECRET_KEY": "bench-only-not-secret", "ALLOWED_HOSTS": "testserver",
        "CACHE_URL": "locmemcache://bench", "CELERY_BROKER_URL": "memory://", "HTTPS_ONLY": "false",
        "CREDENTIAL_KEYS": "mHWpJZ5C_8lJthykFMT0jVbJunxHg-_GB5Z4P0YBXsU=", "SWITCHBOARD_SKIP_DOTENV": "1",
        "DJANGO_SETTINGS_MODULE": "bench.settings", "LOG_LEVEL": "WARNING",
        "SECOND_FACTOR_FOR_ADMINS": "false",  # the bench signs in with a password only
    })


def create_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    import psycopg
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def copy_rows(conns: list[tuple[int, str]], rows: int, *, seed: int, start: float, span: float) -> float:
    """`rows` request log rows spread evenly over [start, start + span] (Unix seconds), by COPY with
    the rollup trigger and FK checks off (the bench rebuilds the rollups afterwards)."""
    from django.db import connection

    rng = random.Random(seed)
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        with cursor.cursor.copy(f"COPY connections_requestlog ({COLUMNS}) FROM STDIN") as copy:
            chunk: list[str] = []
            for i in range(rows):
                pk, provider = conns[rng.randrange(len(conns))]
                at = datetime.fromtimestamp(start + span * i / rows + rng.random(), UTC).isoformat()
                roll = rng.random()
                if roll < 0.015:
                    status, outcome, code, message = "503", "http_error", "service_unavailable", "Service Unavailable"
                elif roll < 0.025:
                    status, outcome, code, message = "400", "http_error", "bad_request", "Missing input."
                elif roll < 0.028:
                    status, outcome, code, message = r"\N", "timeout", "", "Read timed out after 30 s"
                elif roll < 0.030:
                    status, outcome, code, message = "429", "http_error", "rate_limited", ""
                else:
                    status, outcome, code, message = "200", "ok", "", ""
                rid = f"{seed:02x}{i:08x}-{pk:04x}-4000-8000-{rng.getrandbits(48):012x}" \
                    if provider in ("teletracker", "cleanlist") else ""
                path = PATHS[provider][i % len(PATHS[provider])]
                chunk.append(f"{pk}\t{provider}\t{'test' if i % 10 == 0 else 'call'}\tGET\t{path}\t"
                             f"{uuid.UUID(int=(seed << 64) + i)}\t1\t{at}\t{20 + i % 400}\t{status}\t{outcome}\t{rid}\t"
                             f"{code}\t{message}\t{{}}\t{{}}\tGET {path}\t{{\"ok\": true}}\tapplication/json\t"
                             "schedule\t\t\t\n")
                if len(chunk) == 50_000:
                    copy.write("".join(chunk))
                    chunk.clear()
            if chunk:
                copy.write("".join(chunk))
        cursor.execute("SET session_replication_role = origin")
    return time.perf_counter() - began


def fill(rows: int, n_connections: int) -> float:
    """200 connections, then `rows` request log rows over the last 30 days, by COPY."""
    from django.db import connection

    from connections.models import Connection

    now = datetime.now(UTC)
    conns = Connection.objects.bulk_create([
        Connection(name=f"conn-{i:04d}", provider=PROVIDERS[i % 5], base_url="https://api.example.com",
                   health=random.choice(["ok"] * 8 + ["degraded", "failing"]), last_test_at=now,
                   rl_limit=1200 if PROVIDERS[i % 5] == "clever" else None,
                   rl_remaining=random.randint(0, 1200) if PROVIDERS[i % 5] == "clever" else None,
                   rl_reset_at=now + timedelta(seconds=30) if PROVIDERS[i % 5] == "clever" else None,
                   rl_observed_at=now if PROVIDERS[i % 5] == "clever" else None)
        for i in range(n_connections)])
    ids = [(c.pk, c.provider) for c in conns]
    span = 30 * 86400
    from connections import partitions, rollups

    if partitions.is_partitioned():  # PostgreSQL: a partition per day of the 30 (issue 18)
        for day in range(31):
            partitions.ensure_partitions(today=(now - timedelta(days=day)).date(), days_ahead=0)
    began = time.perf_counter()
    copy_rows(ids, rows, seed=6, start=now.timestamp() - span, span=span)
    rollups.rebuild()
    elapsed = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE connections_requestlog")
        cursor.execute("ANALYZE connections_connection")
    return elapsed


def median_ms(fn, repeat: int) -> float:
    for _ in range(2):  # warm: plans, caches, sessions
        fn()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    configure(url)
    create_database(url)

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    try:
        began = time.perf_counter()
        call_command("migrate", verbosity=0)
        print(f"migrated in {time.perf_counter() - began:.1f} s")
        copy_s = fill(args.rows, args.connections)
        print(f"filled {args.rows:,} request log rows over {args.connections} connections by COPY in {copy_s:.1f} s "
              f"(+ rollups rebuilt; then VACUUM ANALYZE)")

        user = User.objects.create_superuser("bench", password="bench-password-not-secret")
        client = Client()
        client.force_login(user)

        def get(path: str, **headers):
            def run():
                response = client.get(path, headers=headers)
                assert response.status_code == 200, (path, response.status_code)
                return response
            return run

        def page_queries(path: str, **headers) -> list[str]:
            with CaptureQueriesContext(connection) as ctx:
                get(path, **headers)()
            return [q["sql"] for q in ctx.captured_queries]

        def data_queries(path: str, **headers) -> list[str]:
            """The page's own queries (not the session, user and permission look-ups)."""
            return [q for q in page_queries(path, **headers)
                    if "connections_" in q and "auth_" not in q and "django_session" not in q]

        def raw(queries: list[str]):
            def run():
                with connection.cursor() as cursor:
                    for q in queries:
                        cursor.execute(q)
                        cursor.fetchall()
            return run

        first = get("/log/")()
        older = first.context_data["older_query"]
        pages = {
            "log, first page": ("/log/", "/admin/connections/requestlog/"),
            "log, filtered (vendor + outcome)": ("/log/?vendor=teletracker&outcome=http_error",
                                                 "/admin/connections/requestlog/?provider__exact=teletracker"
                                                 "&outcome__exact=http_error"),
            "log, filtered (connection + 5xx)": ("/log/?connection=conn-0007&status=5xx", None),
            "log, request id (exact)": (None, None),
            "log, older page": (f"/log/?{older}", None),
            "overview": ("/", None),
            "overview rows (htmx poll)": ("/?hx", None),
            "error history, 7 days": ("/errors/", None),
            "error history, 24 h, one connection": ("/connections/conn-0003/errors/?range=24h", None),
        }
        from connections.models import RequestLog

        rid = RequestLog.objects.exclude(vendor_request_id="").order_by("-id").values_list(
            "vendor_request_id", flat=True)[1000]
        pages["log, request id (exact)"] = (f"/log/?request_id={rid}", None)

        print(f"\nmedian of {args.repeat} warm runs, {args.rows:,} rows, {args.connections} connections\n")
        header = f"{'page':40} {'ours ms':>8} {'queries':>7} {'raw SQL ms':>10} {'ours/raw':>8} {'admin ms':>9} {'admin/ours':>10}"
        print(header)
        print("-" * len(header))
        results = {}
        for label, (path, admin_path) in pages.items():
            headers = {"HX-Request": "true"} if path.endswith("?hx") else {}
            path = path.removesuffix("?hx")
            ours = median_ms(get(path, **headers), args.repeat)
            queries = page_queries(path, **headers)
            raw_ms = median_ms(raw(data_queries(path, **headers)), args.repeat)
            admin = median_ms(get(admin_path), max(3, args.repeat // 3)) if admin_path else None
            results[label] = (ours, raw_ms, admin, len(queries))
            print(f"{label:40} {ours:8.1f} {len(queries):7d} {raw_ms:10.2f} {ours / raw_ms:7.1f}x "
                  f"{(f'{admin:9.1f}' if admin else '        —')} "
                  f"{(f'{admin / ours:9.1f}x' if admin else '         —')}")

        # The overview's query count does not grow with the number of connections: add as many
        # again (without log rows) and count once more.
        from connections.models import Connection

        counts = {Connection.objects.count(): len(page_queries("/"))}
        Connection.objects.bulk_create([Connection(name=f"extra-{i:04d}", provider=PROVIDERS[i % 5],
                                                   base_url="https://api.example.com")
                                        for i in range(args.connections)])
        counts[Connection.objects.count()] = len(page_queries("/"))
        print(f"\noverview queries by number of connections: {counts} "
              f"({'constant' if len(set(counts.values())) == 1 else 'NOT CONSTANT'})")

        print("\ngoals")
        for label, (ours, raw_ms, admin, _) in results.items():
            if not label.startswith("log"):
                continue
            verdicts = []
            if admin:
                verdicts.append(f"{admin / ours:.1f}x faster than admin ({'ok' if admin / ours >= 10 else 'MISSED'}: >= 10x)")
            verdicts.append(f"{ours / raw_ms:.1f}x the raw SQL ({'ok' if ours / raw_ms <= 3 else 'MISSED'}: <= 3x)")
            print(f"  {label}: " + "; ".join(verdicts))
        return 0
    finally:
        if not args.keep:
            drop_database(url)
            print("\nbench database dropped")


if __name__ == "__main__":
    sys.exit(main())
