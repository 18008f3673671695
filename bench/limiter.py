"""The rate limiter's cost per decision (issue 11): the database limiter on the embedded default's
SQLite file against Redis's, in one run:

    .venv/bin/python bench/limiter.py [--calls 2000] [--rounds 5]

Each backend runs in its own process (a fresh SQLite file in a temporary folder; Redis at
BENCH_CACHE_URL, default redis://127.0.0.1:6379/3, under scope names no one else uses). Per plan it
times acquire + release, never waiting (limits far above the rate): Cleverbridge's (a lease and a
pace), Clever's (a fixed window) and a block-only plan (the other three vendors). Prints the median
over rounds of the mean time per call, and the database's time as a ratio of Redis's.
Prints results only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = "redis://127.0.0.1:6379/3"


def child(calls: int, rounds: int) -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from connections.outbound.throttle import get_limiter
    from connections.providers.http import Rule, ThrottlePlan

    if os.environ["DATABASE_URL"].startswith("sqlite"):
        call_command("migrate", verbosity=0)
    limiter, tag = get_limiter(), f"bench-limiter:{uuid.uuid4().hex[:8]}"
    plans = {
        "cleverbridge (lease + pace)": ThrottlePlan(rules=(Rule("concurrency", f"{tag}:cb", 10**6),
                                                           Rule("pace", f"{tag}:cb", 10**7, 1.0)), block_scope=f"{tag}:cb"),
        "clever (window)": ThrottlePlan(rules=(Rule("window", f"{tag}:cl", 10**9, 60.0),), block_scope=f"{tag}:cl"),
        "block only": ThrottlePlan(rules=(), block_scope=f"{tag}:none"),
    }
    out = {"limiter": type(limiter).__name__}
    for name, plan in plans.items():
        means = []
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(calls):
                limiter.release(limiter.acquire(plan, max_wait=5, seed=lambda start: 0))
            means.append((time.perf_counter() - started) / calls * 1000)
        out[name] = statistics.median(means)
    print(json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.calls, args.rounds)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        base = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings", "SWITCHBOARD_SKIP_DOTENV": "1",
                "DEBUG": "false", "SECRET_KEY": "bench-only-not-secret", "CELERY_BROKER_URL": "memory://",
                "CREDENTIAL_KEYS": "mHWpJZ5C_8lJthykFMT0jVbJunxHg-_GB5Z4P0YBXsU=", "LOG_LEVEL": "WARNING",
                "DATABASE_URL": f"sqlite:///{Path(folder) / 'bench.sqlite3'}"}
        base.pop("CACHE_URL", None)
        results = []
        for env in (base, {**base, "CACHE_URL": os.environ.get("BENCH_CACHE_URL", DEFAULT_CACHE)}):
            proc = subprocess.run([sys.executable, __file__, "--child", "--calls", str(args.calls),
                                   "--rounds", str(args.rounds)], env=env, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-2000:])
                return 1
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    database, redis = results
    print(f"acquire + release, median of {args.rounds} rounds of {args.calls} calls (ms per call):")
    print(f"  {'plan':<28} {database['limiter'] + ' (SQLite)':>26} {redis['limiter']:>14} {'ratio':>7}")
    for name in [key for key in database if key != "limiter"]:
        print(f"  {name:<28} {database[name]:>26.3f} {redis[name]:>14.3f} {database[name] / redis[name]:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
