"""Where one outbound call spends its time (issue 18): cProfile over sequential sends.

    .venv/bin/python bench/profile_outbound.py [--calls 1000] [--out docs/outbound-profile.txt]
    .venv/bin/python bench/profile_outbound.py --sections [--calls 5000]   # wall time per part

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
    parser.add_argument("--sections", action="store_true",
                        help="no cProfile: wall time per part of the call (each part timed around its function)")
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
        if args.sections:
            sections(lambda: send(connection, spec, actor=actor), args.calls)
            return 0
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


# The parts of one call, each timed around the function that does it (inclusive of what it calls).
SECTIONS = [
    ("connections.outbound.client", "kept_credential", "kept credential (checked later, by the limiter)"),
    ("connections.outbound.client", "_plain", "is the kept credential's call one plain request"),
    ("connections.outbound.client", "_active_credential", "active credential (cache check or SELECT)"),
    ("connections.outbound.client", "reveal", "decrypt the secret"),
    ("connections.outbound.guard", "check_url", "URL and address check"),
    ("connections.outbound.client", "Call", "call set-up"),
    ("connections.outbound.attempt", "window_seed", "limiter seed"),
    ("connections.outbound.transport", "prepare", "prepare the request"),
    ("connections.outbound.transport", "send", "HTTP: send and read the status and headers"),
    ("connections.outbound.attempt", "read_body", "HTTP: read the body"),
    ("connections.outbound.attempt", "classify", "classify the answer"),
    ("connections.outbound.attempt", "request_excerpt", "request excerpt (redacted)"),
    ("connections.outbound.attempt", "response_excerpt", "response excerpt (redacted)"),
    ("connections.outbound.attempt", "update_snapshot", "rate-limit snapshot"),
    ("connections.outbound.call", "insert_log", "log row"),
    ("connections.outbound.client", "_result", "the Result"),
]


def sections(call, calls: int) -> None:
    """Median-free, simple: total wall time of `calls` calls, and each part's share of it."""
    import importlib
    import time
    from collections import Counter

    from connections.outbound.throttle import get_limiter

    spent: Counter = Counter()

    def timed(fn, label):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - t0
        return wrapper

    for module_name, attr, label in SECTIONS:
        module = importlib.import_module(module_name)
        if hasattr(module, attr):
            setattr(module, attr, timed(getattr(module, attr), label))
    limiter = get_limiter()
    for attr, label in (("acquire", "limiter: acquire"), ("release", "limiter: release")):
        setattr(limiter, attr, timed(getattr(limiter, attr), label))
    t0 = time.perf_counter()
    for _ in range(calls):
        call()
    total = (time.perf_counter() - t0) / calls * 1000
    print(f"{calls} sequential calls through send(): {total:.3f} ms each (load average {os.getloadavg()[0]:.1f})")
    for label, seconds in spent.most_common():
        print(f"  {seconds / calls * 1000:7.3f} ms  {label}")
    print(f"  {total - sum(spent.values()) / calls * 1000:7.3f} ms  the rest (send()'s own code, Python)")


if __name__ == "__main__":
    sys.exit(main())
