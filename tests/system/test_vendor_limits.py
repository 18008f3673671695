"""Vendor limits hold across processes: 8 CLI processes hammer one Cleverbridge connection while the
tree (web workers, Celery worker processes, beat) runs beside them.

Cleverbridge allows at most 4 concurrent requests per egress IP and answers 429 with a one-minute
block beyond that (shared/VENDORS.md). Each `manage.py connections call` process sends its requests
one after another, so only a limiter shared by every process on the machine keeps 8 of them at 4.
The sandbox twin counts what really arrived: the most requests in flight at once and every 429.
"""

from __future__ import annotations

import json
import time

import pytest

pytestmark = [pytest.mark.system]

PROCESSES = 8
REPEAT = 6
VENDOR_MAX_CONCURRENT = 4
# Each request is held 0.2 s at the vendor so that the processes' requests overlap for certain.
SLOW_SECONDS = 0.2


@pytest.fixture
def slow_cleverbridge(product):
    product.sandbox("POST", "cleverbridge/reset", b"{}")
    product.sandbox("POST", "cleverbridge/fault", json.dumps({"fault": "slow", "seconds": SLOW_SECONDS}).encode())
    yield
    product.sandbox("POST", "cleverbridge/reset", b"{}")  # clears the fault and any block


def test_eight_cli_processes_stay_within_cleverbridges_limits(product, slow_cleverbridge):
    started = time.monotonic()
    procs = [product.popen_manage("connections", "call", "demo-cleverbridge", "GET", "/connection/test",
                                  "--repeat", str(REPEAT), "--json") for _ in range(PROCESSES)]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    elapsed = time.monotonic() - started
    stats = product.sandbox("GET", "cleverbridge/stats")

    answers = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode in (0, 1), f"exit {proc.returncode}: {err[-2000:]}"
        answers.append(json.loads(out))
    statuses = [r["status_code"] for a in answers for r in (a.get("results") or [a])]
    summary = (f"{PROCESSES} processes x {REPEAT} in {elapsed:.1f} s; vendor saw {stats['requests']} requests, "
               f"max {stats['max_in_flight']} in flight, by status {stats['by_status']}; "
               f"the CLI saw {sorted(set(map(str, statuses)))}")
    assert stats["rate_limited"] == 0 and "429" not in stats["by_status"], summary
    assert stats["max_in_flight"] <= VENDOR_MAX_CONCURRENT, summary
    # Nothing was given up on or refused either: every request was sent once and succeeded.
    assert all(a["ok_count"] == REPEAT for a in answers), summary
    assert stats["requests"] >= PROCESSES * REPEAT, summary
