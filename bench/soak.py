"""Soak: 200 connections tested on schedule by 3 Celery workers and beat against the sandbox,
while operators browse and rotate, with Redis restarted mid-run (issues 7 and 13).

    .venv/bin/python bench/soak.py [--seconds 180] [--broker redis|rabbitmq] [--redis-restarts 1]
                                   [--restart-postgres] [--keep]

Self-contained and private: its own redis-server on SOAK_REDIS_PORT (default 23091, no
persistence) for the cache and limiter (db 7) and, with --broker redis, the broker (db 8); a
throwaway PostgreSQL database (SOAK_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/
soak_switchboard); the queue "soak-celery" (bench/soak_settings.py); the sandbox in its own
process. With --broker rabbitmq the broker is RabbitMQ on 127.0.0.1:5672 (guest/guest) in its own
vhost (--rabbitmq-vhost, default "soak", created with rabbitmqctl when it can be, else "/"); the
soak's Redis still holds the cache and the limiter, so its restarts still hit every worker.
Redis is restarted --redis-restarts times spread over the run (default once, at 1/3): shutdown
nosave, so every key is lost, then started again. Only --restart-postgres restarts the machine's
PostgreSQL (pg_ctlcluster ... restart, once at 2/3): anyone else's test run breaks meanwhile, so
it is off unless asked for.

40 connections per vendor, each tested every --interval (30) seconds by beat; Cleverbridge's
connections share one egress budget (CLEVERBRIDGE_RATE_LIMIT=150 and the twin's 150/s, 4 in
flight); every Clever connection uses the same token (1200/minute, fixed window); every
Cleanlist connection has its own token and tests with email_verify (which checks it). On top:
bulk calls pushing Cleverbridge and Clever to their limits, an operator browsing the overview,
log, errors and detail pages, and rotations of random Cleanlist connections every few seconds.

Guarantees checked (exit 1 if one fails): no 429 from any twin; Cleverbridge at most 150 per
second per IP and 4 in flight; Clever at most 1200 per minute per token, across every Redis
restart (the limiter seeds a window whose count Redis lost: connections/outbound/throttle_seed.py);
no lost rotation (every Cleanlist connection's stored active token is the one live token the twin
holds for it, no attempt left unsettled, nothing in the recovery spool); worker memory grows less
than RSS_GROWTH_BOUND between warm-up and the end; after each restart, scheduled tests succeed
again within RESUME_BOUND seconds; no page answers 500 outside the outage windows; every worker
still runs and answers a broker ping at the end, and beat still runs. Prints a summary table.

The modules: soak_env.py (its Redis, brokers, settings), soak_run.py (set-up, processes, load,
restarts), soak_report.py (the verdict).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.outbound import database, start_sandbox  # noqa: E402
from bench.soak_env import DEFAULT_DB, broker_url, configure, queue_length, redis_start, redis_stop  # noqa: E402
from bench.soak_run import Soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--interval", type=int, default=30, help="each connection's test interval (s, >= 30)")
    parser.add_argument("--rotate-every", type=float, default=3.0)
    parser.add_argument("--keep", action="store_true", help="keep the soak database afterwards")
    parser.add_argument("--no-restarts", action="store_true", help="restart nothing (a dry run)")
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis",
                        help="Celery broker: the soak's Redis (db 8), or RabbitMQ on 127.0.0.1:5672 (guest/guest)")
    parser.add_argument("--rabbitmq-vhost", default="soak", help="RabbitMQ vhost of the soak's queue")
    parser.add_argument("--redis-restarts", type=int, default=1, help="Redis restarts spread over the run (>= 1)")
    parser.add_argument("--restart-postgres", action="store_true",
                        help="also restart the machine's PostgreSQL once (breaks anyone else's tests meanwhile)")
    args, _ = parser.parse_known_args()  # bench/run.py passes its own arguments to every bench
    db_url = os.environ.get("SOAK_DATABASE_URL", DEFAULT_DB)
    if args.redis_restarts < 1:
        parser.error("--redis-restarts must be at least 1 (use --no-restarts for none)")
    redis_start()
    env = configure(db_url, broker_url(args.broker, args.rabbitmq_vhost))
    queue_length(env["CELERY_BROKER_URL"], purge=True)  # RabbitMQ keeps what an earlier run left
    database(db_url, "create")
    sandbox_proc, sandbox = start_sandbox()
    soak = Soak(args, env, sandbox)
    try:
        return soak.run()
    finally:
        for proc in soak.procs.values():
            if proc.poll() is None:
                proc.kill()
        sandbox_proc.kill()
        from django import db

        db.connections.close_all()
        if not args.keep:
            database(db_url, "drop")
        redis_stop()


if __name__ == "__main__":
    sys.exit(main())
