"""The outbound client's cost and the throughput it reaches (issue 4), in one run:

    .venv/bin/python bench/outbound.py [--calls 2000] [--seconds 10] [--threads 4] [--keep]

Self-contained: creates a throwaway PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/bench_outbound), migrates it, uses Redis for the shared
limiter (BENCH_CACHE_URL, default redis://127.0.0.1:6379/3, its own key prefix), and starts
the sandbox vendors in a separate process (so the vendor twin does not compete with the client
for this process's GIL). Then:

1. Cost per call: the same GET /connection/test of the Cleverbridge twin, sequentially, through
   a bare keep-alive requests.Session and through connections.outbound.client.send (guard, throttle
   with its Redis round trips, authentication, one RequestLog row, redaction, excerpts),
   interleaved in rounds. The twin's limit and the setting are raised for this part, so the
   throttle's code runs but never waits. Prints the median per-call times and their ratio
   (goal, issue 18: at most 1.5).
2. Throughput: a bulk test of one Cleverbridge connection at the real limit (150/s, 4 in
   flight) from several threads of one process for --seconds; prints requests/s as a fraction of 150
   (goal, issue 18: at least 95 %, with no 429) and the twin's stats (429s, the busiest second,
   the most in flight).

Prints results only; asserts nothing. The database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/bench_outbound"
DEFAULT_CACHE = "redis://127.0.0.1:6379/3"
LIMIT = 150


def configure(db_url: str, cache_url: str) -> None:
    os.environ.update({
        "DATABASE_URL": db_url, "CACHE_URL": cache_url, "DEBUG": "false", "SECRET_KEY": "bench-only-not-secret",
        "ALLOWED_HOSTS": "testserver", "CELERY_BROKER_URL": "memory://", "SWITCHBOARD_SKIP_DOTENV": "1",
        "CREDENTIAL_KEYS": "mHWpJZ5C_8lJthykFMT0jVbJunxHg-_GB5Z4P0YBXsU=", "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true",
        "DJANGO_SETTINGS_MODULE": "dashboard.settings", "LOG_LEVEL": "WARNING",
        "CLEVERBRIDGE_RATE_LIMIT": str(LIMIT),
    })


def database(url: str, action: str) -> None:
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if action == "create":
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sandbox() -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from connections.sandbox import SandboxServer\n"
            f"SandboxServer('127.0.0.1', {port}).serve_forever()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def control(url: str, method: str, path: str, body: dict | None = None) -> dict:
    import requests

    resp = requests.request(method, f"{url}/_sandbox/{path}", json=body, timeout=10)
    resp.raise_for_status()
    return resp.json()


def median_per_call(fn, n: int, cpu: list[float] | None = None) -> float:
    """Median wall time of n calls; appends this process's CPU seconds per call to `cpu`."""
    samples = []
    c0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    if cpu is not None:
        cpu.append((time.process_time() - c0) / n)
    return statistics.median(samples)


def setup_django() -> None:
    """django.setup(), this run's own cache key prefix, and the bench database migrated."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.CACHES["default"]["KEY_PREFIX"] = f"bench-{uuid.uuid4().hex[:8]}"
    call_command("migrate", verbosity=0)


def unthrottled_connection(sandbox: str, name: str):
    """A Cleverbridge connection to the twin with its limits (twin and setting) raised, so the
    throttle's code runs but never waits; (connection, actor)."""
    from django.conf import settings

    from connections.sandbox import DEMO_CREDENTIALS
    from connections.services.audit import Actor
    from connections.services.vault import connection_create

    control(sandbox, "POST", "cleverbridge/config", {"rate_limit_per_second": 10**6, "max_concurrent": 10**6})
    settings.CLEVERBRIDGE_RATE_LIMIT = 10**6
    actor = Actor(label="bench", via="system")
    return connection_create(name=name, provider="cleverbridge", base_url=f"{sandbox}/cleverbridge",
                             secret=dict(DEMO_CREDENTIALS["cleverbridge"]), actor=actor), actor


def cost(sandbox: str, calls: int) -> dict:
    import requests
    from django.conf import settings

    from connections.outbound.client import RequestSpec, send
    from connections.sandbox import DEMO_CREDENTIALS

    demo = DEMO_CREDENTIALS["cleverbridge"]
    connection, actor = unthrottled_connection(sandbox, f"bench-cost-{uuid.uuid4().hex[:6]}")
    spec = RequestSpec("GET", "/connection/test")
    bare = requests.Session()
    url = f"{sandbox}/cleverbridge/connection/test"

    def bare_call():
        resp = bare.get(url, auth=(demo["username"], demo["password"]), headers={"Accept": "application/json"},
                        timeout=(5, 20))
        assert resp.status_code == 200 and resp.json()["ResultMessage"] == ""

    def client_call():
        assert send(connection, spec, actor=actor).ok

    for _ in range(100):  # warm up both paths (connections, caches, scripts)
        bare_call()
        client_call()
    rounds, per = 10, max(1, calls // 10)
    bare_times, client_times, bare_cpu, client_cpu = [], [], [], []
    for _ in range(rounds):
        bare_times.append(median_per_call(bare_call, per, bare_cpu))
        client_times.append(median_per_call(client_call, per, client_cpu))
    b, c = statistics.median(bare_times), statistics.median(client_times)
    bc, cc = statistics.median(bare_cpu), statistics.median(client_cpu)
    settings.CLEVERBRIDGE_RATE_LIMIT = LIMIT
    control(sandbox, "POST", "cleverbridge/config", {"rate_limit_per_second": LIMIT, "max_concurrent": 4})
    return {"bare_ms": b * 1000, "client_ms": c * 1000, "ratio": c / b, "calls": rounds * per,
            "bare_cpu_ms": bc * 1000, "client_cpu_ms": cc * 1000, "load": os.getloadavg()[0]}


def throughput(sandbox: str, seconds: float, threads: int) -> dict:
    from django.db import connection as db

    from connections.models import Connection
    from connections.outbound.client import RequestSpec, send
    from connections.sandbox import DEMO_CREDENTIALS
    from connections.services.audit import Actor
    from connections.services.vault import connection_create

    control(sandbox, "POST", "cleverbridge/reset")
    actor = Actor(label="bench", via="system")
    connection = connection_create(name=f"bench-bulk-{uuid.uuid4().hex[:6]}", provider="cleverbridge",
                                   base_url=f"{sandbox}/cleverbridge",
                                   secret=dict(DEMO_CREDENTIALS["cleverbridge"]), actor=actor)
    spec = RequestSpec("GET", "/connection/test")
    counts = {"ok": 0, "other": 0}
    lock = threading.Lock()
    start = time.time() + 0.5
    end = start + seconds

    def worker():
        own = Connection.objects.get(pk=connection.pk)
        time.sleep(max(0.0, start - time.time()))
        ok = other = 0
        while time.time() < end:
            if send(own, spec, actor=actor).ok:
                ok += 1
            else:
                other += 1
        with lock:
            counts["ok"] += ok
            counts["other"] += other
        db.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    stats = control(sandbox, "GET", "cleverbridge/stats")
    rate = counts["ok"] / seconds
    return {"ok": counts["ok"], "not_ok": counts["other"], "per_second": rate, "fraction": rate / LIMIT,
            "twin": {k: stats.get(k) for k in ("requests", "rate_limited", "max_per_second", "max_in_flight",
                                               "concurrency_violations")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    cache_url = os.environ.get("BENCH_CACHE_URL", DEFAULT_CACHE)
    configure(db_url, cache_url)
    database(db_url, "create")
    sandbox_proc, sandbox = start_sandbox()
    try:
        setup_django()
        print(f"sandbox {sandbox} (own process); database {db_url.rsplit('/', 1)[1]}; cache {cache_url}")
        c = cost(sandbox, args.calls)
        print(f"\n1. cost per call, median of {c['calls']} sequential GET /connection/test:")
        print(f"   bare requests.Session   {c['bare_ms']:.3f} ms")
        print(f"   connections.outbound.client.send {c['client_ms']:.3f} ms  (guard + throttle + auth + log row + redaction)")
        print(f"   ratio {c['ratio']:.2f}  (goal <= 1.5: {'met' if c['ratio'] <= 1.5 else 'NOT met'})")
        print(f"   CPU of this process per call: bare {c['bare_cpu_ms']:.3f} ms, client {c['client_cpu_ms']:.3f} ms "
              f"(load average {c['load']:.1f}: wall times wait for a CPU when it is high, CPU time much less)")
        t = throughput(sandbox, args.seconds, args.threads)
        print(f"\n2. bulk test of one Cleverbridge connection, {args.threads} threads for {args.seconds:g} s at "
              f"the real limit ({LIMIT}/s, 4 in flight):")
        print(f"   {t['per_second']:.1f} requests/s = {t['fraction']:.1%} of {LIMIT}/s "
              f"(goal >= 95 % with 0 x 429: "
              f"{'met' if t['fraction'] >= 0.95 and not t['twin']['rate_limited'] else 'NOT met'})")
        print(f"   429s: {t['twin']['rate_limited']}; busiest second at the twin: {t['twin']['max_per_second']}; "
              f"most in flight: {t['twin']['max_in_flight']}; failed calls: {t['not_ok']}")
        print("\n" + json.dumps({"cost": c, "throughput": t}))
    finally:
        sandbox_proc.terminate()
        sandbox_proc.wait(timeout=10)
        if not args.keep:
            from django.db import connections

            connections.close_all()
            database(db_url, "drop")


if __name__ == "__main__":
    main()
