"""The request log row alone: what insert_log costs its caller, written behind against waiting.

    .venv/bin/python bench/logrow.py [--rows 2000] [--gap-ms 1.0] [--keep]

Self-contained like bench/outbound.py (a throwaway PostgreSQL database, BENCH_DATABASE_URL, default
.../bench_logrow). Rows of one connection, sequentially, on one database connection, interleaved
in rounds:

- waiting: logrows.insert_fast, the one-statement INSERT ... RETURNING id that waits for the server
  (what insert_log did before it wrote behind);
- behind: insert_log as the client calls it (sent behind, answer read at the next use).

Between two rows the loop does nothing for --gap-ms (a sleep, not timed): in a send() the vendor's
answer comes between two rows, during which the server runs the previous INSERT. With --gap-ms 0 the
next row waits for the previous one's answer (one statement at a time per connection), so the
figure shows what the server takes per row instead. Prints median microseconds per row, and the CPU
per row of this process (above a loop that only builds the row's values, every column Call.record
gives) and of its PostgreSQL backend (Linux /proc/<pid>/schedstat: the server is on this machine);
asserts nothing. The database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.outbound import configure, database, setup_django  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/bench_logrow"


def _cpu_ns(pid: int) -> int:
    """CPU time a process has used, in ns (Linux /proc/<pid>/schedstat; 0 where there is none)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def measure(rows: int, gap: float) -> dict:
    import uuid

    from django.db import connection as db
    from django.utils import timezone

    from connections.models import Connection
    from connections.outbound import logrows
    from connections.outbound.call import insert_log

    conn = Connection.objects.create(name="bench-logrow", provider="cleverbridge", base_url="https://127.0.0.1")

    def fields():  # every column Call.record gives
        return {"connection": conn, "provider": "cleverbridge", "operation": "test", "method": "GET",
                "path": "/connection/test", "chain_id": uuid.uuid4(), "attempt": 1, "started_at": timezone.now(),
                "duration_ms": 1, "status_code": 200, "outcome": "ok", "vendor_request_id": "", "error_code": "",
                "error_message": "", "error_details": {}, "rate_limit": {"remaining": 9, "limit": 10},
                "retry_after": None, "request_excerpt": "", "response_excerpt": "HTTP 200\n" + "x" * 200,
                "response_content_type": "application/json", "triggered_by": "system", "actor_label": "",
                "task_id": "", "application": ""}

    paths = {"nothing": fields, "waiting": lambda: logrows.insert_fast(db, fields()),
             "behind": lambda: insert_log(**fields())}
    logrows.FIRST_ROW_WAITS = False  # the written-behind path from the first row (a connection's first row waits)
    assert logrows.can_write_behind(db), "this database connection cannot write behind"
    server = db.connection.info.backend_pid

    def run(fn, n):
        samples = []
        cpu, srv = time.process_time_ns(), _cpu_ns(server)
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
            if gap:
                time.sleep(gap)
        db.connection.settle()
        return statistics.median(samples), time.process_time_ns() - cpu, _cpu_ns(server) - srv

    for fn in paths.values():  # warm up
        run(fn, 100)
    rounds, per = 10, max(1, rows // 10)
    out = {name: [] for name in paths}
    cpu = {name: [0, 0] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            median, client_ns, server_ns = run(fn, per)
            out[name].append(median)
            cpu[name][0] += client_ns
            cpu[name][1] += server_ns
    n = rounds * per
    return ({name: statistics.median(v) * 1e6 for name, v in out.items()}
            | {f"{name}_cpu": (c / n / 1e3 - cpu["nothing"][0] / n / 1e3, s / n / 1e3) for name, (c, s) in cpu.items()}
            | {"rows": n, "load": os.getloadavg()[0]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--gap-ms", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    configure(db_url, os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/3"))
    database(db_url, "create")
    try:
        setup_django()
        r = measure(args.rows, args.gap_ms / 1000)
        print(f"insert_log's cost to its caller, median of {r['rows']} rows each, {args.gap_ms:g} ms between rows "
              f"(load average {r['load']:.1f}); CPU per row (us) of this process, above building the row's "
              f"values, and of its PostgreSQL backend:")
        print(f"   waiting for the server (INSERT ... RETURNING id) {r['waiting']:.0f} us  "
              f"(CPU client {r['waiting_cpu'][0]:.0f}, server {r['waiting_cpu'][1]:.0f})")
        print(f"   written behind                                   {r['behind']:.0f} us  "
              f"(CPU client {r['behind_cpu'][0]:.0f}, server {r['behind_cpu'][1]:.0f})")
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            database(db_url, "drop")


if __name__ == "__main__":
    main()
