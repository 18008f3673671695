"""One OS process of the multi-process throttle tests (tests/outbound/test_throttle.py runs several).

    python -m tests.outbound.throttle_worker CLEVERBRIDGE_ID CLEVER_ID DURATION THREADS
    python -m tests.outbound.throttle_worker setup [CLEVERBRIDGE_URL CLEVER_URL]
    python -m tests.outbound.throttle_worker steps JSON

The first prints "ready" once set up, reads the start time (Unix seconds) from standard input, and
hammers both connections through the real client from then for DURATION seconds; it prints a JSON
summary of outcomes. `setup` migrates the database and adds the two connections (for a
database the parent test cannot reach itself: the embedded SQLite file) and prints their ids.
`steps` drives the limiter directly, e.g. [["acquire", "scope", 1, 2.0], ["crash"]], and prints
one result per step; "crash" exits at once, leaving its leases behind as a killed process does.
Settings come from the environment (DJANGO_SETTINGS_MODULE, the database, the cache key prefix).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.test_settings")

import django  # noqa: E402

django.setup()

from django.db import connection as db  # noqa: E402

from connections.models import Connection  # noqa: E402
from connections.outbound.client import RequestSpec, send  # noqa: E402
from connections.services.audit import Actor  # noqa: E402

ACTOR = Actor(label="throttle-worker", via="system")


def hammer(connection_id: int, path: str, end: float, counts: Counter, lock: threading.Lock) -> None:
    connection = Connection.objects.get(pk=connection_id)
    try:
        while time.time() < end:
            result = send(connection, RequestSpec("GET", path), actor=ACTOR, retry=False, max_wait=1.0)
            key = f"{connection.provider}:{result.status_code or result.outcome}"
            with lock:
                counts[key] += 1
            if result.status_code is None:
                time.sleep(0.05)  # refused locally: do not spin
    finally:
        db.close()


def setup(*urls: str) -> None:
    from django.core.management import call_command

    from connections.sandbox import DEMO_CREDENTIALS
    from tests import factories

    call_command("migrate", verbosity=0)
    ids = [factories.connection(p, base_url=url, secret=dict(DEMO_CREDENTIALS[p])).pk
           for p, url in zip(("cleverbridge", "clever"), urls, strict=False)]
    print(json.dumps(ids))


def steps(script: list) -> None:
    """Run limiter steps: acquire SCOPE LIMIT LEASE_SECONDS (a concurrency lease, never released),
    block SCOPE SECONDS, state SCOPE (in flight, seconds blocked), crash."""
    from connections.outbound.throttle import get_limiter
    from connections.providers.http import Rule, ThrottlePlan

    limiter, results = get_limiter(), []
    for op, *args in script:
        if op == "acquire":
            scope, limit, lease_seconds = args
            permit = limiter.acquire(ThrottlePlan(rules=(Rule("concurrency", scope, limit),), block_scope=scope),
                                     max_wait=0, lease_seconds=lease_seconds)
            results.append({"ok": permit.ok, "reason": permit.reason})
        elif op == "block":
            limiter.block(args[0], args[1])
            results.append(None)
        elif op == "state":
            until = limiter.blocked_until(args[0])
            results.append({"in_flight": limiter.in_flight(args[0]),
                            "blocked_for": round(until - time.time(), 1) if until else 0})
        elif op == "crash":
            print(json.dumps(results), flush=True)
            os._exit(0)  # no release, no clean-up: the leases stay until they expire
    print(json.dumps(results))


def main() -> None:
    if sys.argv[1] == "setup":
        return setup(*sys.argv[2:])
    if sys.argv[1] == "steps":
        return steps(json.loads(sys.argv[2]))
    cleverbridge_id, clever_id = int(sys.argv[1]), int(sys.argv[2])
    duration, threads = float(sys.argv[3]), int(sys.argv[4])
    counts: Counter = Counter()
    lock = threading.Lock()
    Connection.objects.filter(pk__in=[cleverbridge_id, clever_id]).count()  # connected and warm
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())  # the same moment for every process
    end = start_at + duration
    time.sleep(max(0.0, start_at - time.time()))
    workers = [threading.Thread(target=hammer, args=(cleverbridge_id, "/connection/test", end, counts, lock))
               for _ in range(threads)]
    workers.append(threading.Thread(target=hammer, args=(clever_id, "/v3.0/districts", end, counts, lock)))
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps(dict(counts)))


if __name__ == "__main__":
    main()
