"""A/B of the kept active credential and the release without a reply, in one run, interleaved:

    .venv/bin/python bench/credential_ab.py [--calls 1000]

bench/outbound.py's set-up (its own database, Redis, the sandbox in its own process). Per round,
`--calls / 10` sequential send() calls in each mode, then the medians over the rounds:
  before   every call reads the credential from PostgreSQL; the release waits for ZREM's reply
  cache    the kept credential (one MGET per call); release as before
  release  the release without a reply; credential read as before
  both     what the code does now
and a bare requests call. Also micro-loops of the credential read alone (PostgreSQL SELECT +
decryption against MGET + kept copy) and of the release alone. Prints results only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import outbound  # noqa: E402  (bench/outbound.py: set-up shared)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    db_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_credential_ab")
    outbound.configure(db_url, os.environ.get("BENCH_CACHE_URL", outbound.DEFAULT_CACHE))
    outbound.database(db_url, "create")
    proc, sandbox = outbound.start_sandbox()
    try:
        outbound.setup_django()
        run(sandbox, args.calls)
    finally:
        proc.terminate()
        from django.db import connections

        connections.close_all()
        outbound.database(db_url, "drop")


def run(sandbox: str, calls: int) -> None:
    import requests

    from connections import credgen
    from connections.outbound import credrows, throttle
    from connections.outbound.client import RequestSpec, reveal, send
    from connections.sandbox import DEMO_CREDENTIALS

    connection, actor = outbound.unthrottled_connection(sandbox, f"bench-ab-{uuid.uuid4().hex[:6]}")
    spec = RequestSpec("GET", "/connection/test")
    limiter = throttle.get_limiter()
    real_generations, real_release = credgen.generations, type(limiter).release

    def waiting_release(self, permit):
        if permit.lease_key:
            self.client.zrem(permit.lease_key, permit.lease_id)

    def mode(cache: bool, skip: bool) -> None:
        credgen.generations = real_generations if cache else (lambda: None)
        type(limiter).release = real_release if skip else waiting_release

    demo = DEMO_CREDENTIALS["cleverbridge"]
    bare = requests.Session()
    url = f"{sandbox}/cleverbridge/connection/test"

    def bare_call():
        assert bare.get(url, auth=(demo["username"], demo["password"]), headers={"Accept": "application/json"},
                        timeout=(5, 20)).status_code == 200

    def client_call():
        assert send(connection, spec, actor=actor).ok

    modes = {"before": (False, False), "cache": (True, False), "release": (False, True), "both": (True, True)}
    for cache, skip in modes.values():
        mode(cache, skip)
        for _ in range(50):
            client_call()
            bare_call()
    times: dict[str, list[float]] = {name: [] for name in [*modes, "bare"]}
    per = max(1, calls // 10)
    for _ in range(10):
        times["bare"].append(outbound.median_per_call(bare_call, per))
        for name, (cache, skip) in modes.items():
            mode(cache, skip)
            times[name].append(outbound.median_per_call(client_call, per))
    mode(True, True)
    print(f"load average {os.getloadavg()[0]:.1f}; {10 * per} calls per mode, interleaved")
    bare_ms = statistics.median(times["bare"]) * 1000
    for name in [*modes, "bare"]:
        ms = statistics.median(times[name]) * 1000
        print(f"  {name:8s} {ms:.3f} ms  ({ms / bare_ms:.2f}x bare)")

    def db_read():
        cred = credrows.active_credential(connection.pk)
        reveal(cred)

    def kept_read():
        cred = credrows.current_credential(connection.pk)
        reveal(cred)

    n = max(200, calls)
    mode(False, True)
    db_ms = outbound.median_per_call(db_read, n) * 1000
    mode(True, True)
    kept_read()
    kept_ms = outbound.median_per_call(kept_read, n) * 1000
    print(f"credential read + secret: database {db_ms:.3f} ms, kept (MGET) {kept_ms:.3f} ms")

    plan = connection.provider_obj.throttle_plan(connection_id=connection.pk, fingerprint="bench")
    for name, skip in (("waiting for ZREM", False), ("CLIENT REPLY SKIP", True)):
        mode(True, skip)
        samples = []
        for _ in range(n):
            permit = limiter.acquire(plan, max_wait=1)
            t0 = time.perf_counter()
            limiter.release(permit)
            samples.append(time.perf_counter() - t0)
        print(f"release, {name}: {statistics.median(samples) * 1000:.3f} ms")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
