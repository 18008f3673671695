"""Where one outbound call spends its time (issue 18): cProfile over sequential sends.

    .venv/bin/python bench/profile_outbound.py [--calls 1000] [--out docs/outbound-profile.txt]

A flame graph of the same calls without cProfile's own overhead, sampled by py-spy (a tool, not a
dependency: `pip install py-spy` in any venv; it needs ptrace, which root in a container has):

    py-spy record -r 1000 -o docs/outbound-flame.svg -- .venv/bin/python bench/profile_outbound.py --plain --calls 5000

Same set-up as bench/outbound.py (its own database, Redis for the limiter, the sandbox twin in its
own process, the limits raised so the throttle never waits); profiles only the client process.
Writes the table sorted by own time and by cumulative time to --out (and prints it).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from outbound import DEFAULT_CACHE, configure, database, setup_django, start_sandbox, unthrottled_connection  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/bench_sb_scale_profile"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--out", default="")
    parser.add_argument("--plain", action="store_true", help="no cProfile: only make the calls (for py-spy)")
    args = parser.parse_args()
    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    configure(db_url, os.environ.get("BENCH_CACHE_URL", DEFAULT_CACHE))
    database(db_url, "create")
    proc, sandbox = start_sandbox()
    try:
        setup_django()
        from connections.outbound.client import RequestSpec, send

        connection, actor = unthrottled_connection(sandbox, "profile")
        spec = RequestSpec("GET", "/connection/test")
        for _ in range(100):
            assert send(connection, spec, actor=actor).ok
        if args.plain:
            for _ in range(args.calls):
                send(connection, spec, actor=actor)
            return 0
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.calls):
            send(connection, spec, actor=actor)
        profile.disable()
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.strip_dirs()
        print(f"{args.calls} sequential GET /connection/test through send(), profiled:\n", file=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)
        text = out.getvalue()
        print(text)
        if args.out:
            Path(args.out).write_text(text)
        return 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        from django.db import connections

        connections.close_all()
        database(db_url, "drop")


if __name__ == "__main__":
    sys.exit(main())
