"""The egress proxy (issue 16) against the real `manage.py runall` tree, ratios in one run:

    .venv/bin/python bench/proxy.py [--backend postgres|embedded] [--calls 300] [--seconds 15]
                                    [--rotation-seconds 60] [--clients 16]

Starts the tree as tests/system/harness.py does (gunicorn gthread workers, Celery worker and beat,
the sandbox twins; PostgreSQL + Redis by default), creates an application key with
`manage.py appkeys add`, then:

1. Added latency: GET /connection/test of the Cleverbridge twin, made to answer in 20 ms (its
   "slow" fault), sequentially, directly (a keep-alive requests.Session with the demo credential)
   and through /proxy/ (another keep-alive session with the application key), interleaved.
   Prints the medians and p99s and proxied/direct for both (goal: median <= 1.3x).
2. Throughput: --clients application threads call the Cleverbridge twin through the proxy as fast
   as they can for --seconds. Prints delivered/s as a fraction of Cleverbridge's 150/s (goal >= 95 %),
   the vendor's 429s (goal 0) and the most requests in flight at the vendor (goal <= 4).
3. Rotation under load: the same clients call Cleanlist's email_verify (which checks the token) through the proxy for
   --rotation-seconds while this process rotates the Cleanlist token every 2 s (the rotation
   service ops staff use from the page and the CLI). Prints the application calls that failed
   (goal 0), the rotations, and how many calls met a rotation and were retried with the new token.

Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

import requests  # noqa: E402

from tests.system import harness  # noqa: E402

LIMIT = 150
TWIN_MS = 20


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _tree_cpu(root: int, name: str) -> float:
    """CPU seconds (user + system) used so far by the processes called `name` under pid `root`."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        stats[int(stat.parent.name)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    def under(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = stats.get(pid, ("", 0, 0))[1]
        return False
    return sum(cpu for pid, (comm, _, cpu) in stats.items() if name in comm and under(pid))


def latency(product, key: str, calls: int) -> None:
    from connections.sandbox.credentials import DEMO_CREDENTIALS

    cred = DEMO_CREDENTIALS["cleverbridge"]
    product.sandbox("POST", "cleverbridge/reset", b"{}")
    product.sandbox("POST", "cleverbridge/fault", json.dumps({"fault": "slow", "seconds": TWIN_MS / 1000}).encode())
    direct, proxied = requests.Session(), requests.Session()
    direct.auth = (cred["username"], cred["password"])
    direct.headers["Accept"] = "application/json"
    proxied.headers["Authorization"] = f"Bearer {key}"
    d_url = f"{product.sandbox_url}/cleverbridge/connection/test"
    p_url = f"{product.url}/proxy/demo-cleverbridge/connection/test"
    times: dict[str, list[float]] = {"direct": [], "proxied": []}
    cpu_before = 0.0
    for i in range(calls + 20):
        if i == 20:
            cpu_before = _tree_cpu(product.proc.pid, "gunicorn")
        for name, session, url in (("direct", direct, d_url), ("proxied", proxied, p_url)):
            t0 = time.perf_counter()
            response = session.get(url, timeout=10)
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code != 200:
                print(f"  {name} call failed: {response.status_code} {response.text[:200]}")
            if i >= 20:  # warm-up: connections, imports, caches
                times[name].append(elapsed)
    web_cpu_ms = (_tree_cpu(product.proc.pid, "gunicorn") - cpu_before) * 1000 / calls
    product.sandbox("POST", "cleverbridge/reset", b"{}")
    d, p = times["direct"], times["proxied"]
    print(f"1. added latency, {calls} sequential calls each against a twin answering in {TWIN_MS} ms:")
    print(f"   direct   median {statistics.median(d):6.1f} ms  p99 {pct(d, 99):6.1f} ms")
    print(f"   proxied  median {statistics.median(p):6.1f} ms  p99 {pct(p, 99):6.1f} ms")
    print(f"   proxied/direct: median {statistics.median(p) / statistics.median(d):.2f}x (goal <= 1.3x), "
          f"p99 {pct(p, 99) / pct(d, 99):.2f}x; added median {statistics.median(p) - statistics.median(d):.1f} ms")
    print(f"   CPU of the web workers per proxied call: {web_cpu_ms:.1f} ms (what the proxy adds on an idle machine, "
          f"plus its database and Redis round trips; {os.getloadavg()[0]:.1f} load average now)")


def hammer(product, key: str, path: str, clients: int, seconds: float, body: dict | None = None) -> dict:
    """`clients` threads calling the proxy in a closed loop; counts by status and failures."""
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()
    statuses: Counter = Counter()
    failures: list[str] = []
    switchboard_429 = 0

    def client() -> None:
        nonlocal switchboard_429
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        while time.monotonic() < stop_at:
            try:
                if body is None:
                    r = session.get(f"{product.url}/proxy/{path}", timeout=30)
                else:
                    r = session.post(f"{product.url}/proxy/{path}", json=body, timeout=30)
                ok = r.status_code == 200 and (body is None or r.json().get("ok") is True)
                with lock:
                    statuses[r.status_code] += 1
                    if r.headers.get("X-Switchboard-Throttled"):
                        switchboard_429 += 1
                    if not ok:
                        failures.append(f"{r.status_code} {r.text[:160]}")
            except requests.RequestException as exc:
                with lock:
                    failures.append(type(exc).__name__)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"elapsed": time.monotonic() - started, "statuses": statuses, "failures": failures,
            "switchboard_429": switchboard_429}


def throughput(product, key: str, clients: int, seconds: float) -> None:
    product.sandbox("POST", "cleverbridge/reset", b"{}")
    hammer(product, key, "demo-cleverbridge/connection/test", clients, 1.0)  # warm-up
    time.sleep(1.0)
    product.sandbox("POST", "cleverbridge/reset", b"{}")
    run = hammer(product, key, "demo-cleverbridge/connection/test", clients, seconds)
    stats = product.sandbox("GET", "cleverbridge/stats")
    delivered = run["statuses"].get(200, 0) / run["elapsed"]
    print(f"2. {clients} application clients through the proxy against the Cleverbridge twin for {seconds:g} s:")
    print(f"   delivered {delivered:.1f}/s = {delivered / LIMIT:.1%} of {LIMIT}/s (goal >= 95 %); "
          f"statuses {dict(run['statuses'])}; Switchboard 429s {run['switchboard_429']}")
    print(f"   vendor: {stats['requests']} requests, 429s {stats['rate_limited']} (goal 0), most in flight "
          f"{stats['max_in_flight']} (goal <= 4), busiest second {stats['max_per_second']}")
    if run["failures"]:
        print(f"   failures: {len(run['failures'])}, e.g. {run['failures'][:3]}")


def rotation(product, key: str, clients: int, seconds: float) -> None:
    os.environ.update(product.env)
    import django

    django.setup()
    from connections.models import Connection, RequestLog
    from connections.rotation import rotate
    from connections.services.audit import Actor

    # A rescinded token gets 403 (as some Cleanlist deployments answer; VENDORS.md: treat 401 and 403 alike).
    product.sandbox("POST", "cleanlist/config", json.dumps({"rescinded_status": 403}).encode())
    outcomes: Counter = Counter()
    stop = threading.Event()

    def rotator() -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            outcome = rotate(connection=Connection.objects.get(name="demo-cleanlist"), actor=Actor.cli())
            outcomes["ok" if outcome.ok else outcome.state] += 1
            stop.wait(max(0.0, 2.0 - (time.monotonic() - t0)))

    since = time.time()
    thread = threading.Thread(target=rotator)
    thread.start()
    try:
        # email_verify checks the token (pub_echo ignores it): a rescinded token fails there.
        run = hammer(product, key, "demo-cleanlist/email_verify/", clients, seconds, body={"email": "a@example.com"})
    finally:
        stop.set()
        thread.join()
    from datetime import UTC, datetime

    rows = RequestLog.objects.filter(application="bench", operation="proxy",
                                     started_at__gte=datetime.fromtimestamp(since, UTC))
    rejected = rows.filter(status_code__in=(401, 403)).values("task_id").distinct().count()
    by_status = dict(Counter(rows.values_list("status_code", flat=True)))
    total = sum(run["statuses"].values())
    stats = product.sandbox("GET", "cleanlist/stats")
    print(f"3. Cleanlist rotation every 2 s for {seconds:g} s under {clients} clients calling email_verify through the proxy:")
    print(f"   application calls {total} ({total / run['elapsed']:.0f}/s), failed {len(run['failures'])} (goal 0); "
          f"rotations {dict(outcomes)}")
    print(f"   application calls that met a rotation (old token refused at the vendor, retried once with the new one): "
          f"{rejected}; vendor saw rescinded-token uses {stats.get('rescinded_token_uses')}; "
          f"the application's log rows by status {by_status}")
    if run["failures"]:
        print(f"   failures, e.g. {run['failures'][:5]}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="postgres", choices=("postgres", "embedded"))
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rotation-seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--only", choices=("latency", "throughput", "rotation"), help="run one part")
    args, _ = parser.parse_known_args()
    os.environ.setdefault("TEST_KEY_PREFIX", "sbbench")
    t0 = time.monotonic()
    product = harness.start(args.backend)
    print(f"runall tree ({args.backend}) up in {time.monotonic() - t0:.0f} s at {product.url}: gunicorn gthread, "
          f"2 workers x 4 threads (manage.py runall); load average before: {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    try:
        out = product.manage("appkeys", "add", "bench", "--connections", "demo-cleverbridge,demo-cleanlist",
                             "--json").stdout
        key = json.loads(out)["key"]
        if args.only in (None, "latency"):
            latency(product, key, args.calls)
        if args.only in (None, "throughput"):
            throughput(product, key, args.clients, args.seconds)
        if args.only in (None, "rotation"):
            rotation(product, key, args.clients, args.rotation_seconds)
    finally:
        harness.stop(product)
    return 0


if __name__ == "__main__":
    sys.exit(main())
