"""One OS process of the multi-process throttle test (tests/test_throttle.py runs four).

    python -m tests.throttle_worker CLEVERBRIDGE_ID CLEVER_ID START_AT DURATION THREADS

Hammers both connections through the real client until START_AT + DURATION and prints a JSON
summary of outcomes. Settings come from the environment (DJANGO_SETTINGS_MODULE, the test
database and the cache key prefix of the parent test).
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

from connections.client import RequestSpec, send  # noqa: E402
from connections.models import Connection  # noqa: E402
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


def main() -> None:
    cleverbridge_id, clever_id = int(sys.argv[1]), int(sys.argv[2])
    start_at, duration, threads = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    counts: Counter = Counter()
    lock = threading.Lock()
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
