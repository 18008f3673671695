"""Soak: 200 connections tested on schedule by 3 Celery workers and beat against the sandbox,
while operators browse and rotate, with Redis and PostgreSQL restarted mid-run (issue 7).

    .venv/bin/python bench/soak.py [--seconds 180] [--broker redis|rabbitmq] [--redis-restarts 1] [--keep]

WARNING: this RESTARTS the machine's Redis (redis-cli shutdown nosave, then redis-server) and
PostgreSQL (pg_ctlcluster ... restart): Redis --redis-restarts times spread over the run (default
once, at 1/3), PostgreSQL once at 2/3. Anyone else's test run on this machine breaks while it
happens. Run it rarely, on purpose (`make bench` runs it), never from the test suite.

Self-contained: a throwaway PostgreSQL database (SOAK_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/soak_switchboard), Redis databases 7 (cache, limiter) and 8
(broker) with the queue "soak-celery" (bench/soak_settings.py), the sandbox in its own process.
With --broker rabbitmq the broker is RabbitMQ on 127.0.0.1:5672 (guest/guest), vhost "soak"
(created with rabbitmqctl when it can be, else "/"), same queue name; Redis still holds the cache
and the limiter, so its restarts still hit every worker.
40 connections per vendor, each tested every --interval (30) seconds by beat; Cleverbridge's
connections share one egress budget (CLEVERBRIDGE_RATE_LIMIT=150 and the twin's 150/s, 4 in
flight); every Clever connection uses the same token (1200/minute, fixed window); every
Cleanlist connection has its own token and tests with email_verify (which checks it). On top:
bulk calls pushing Cleverbridge and Clever to their limits, an operator browsing the overview,
log, errors and detail pages, and rotations of random Cleanlist connections every few seconds.

Guarantees checked (exit 1 if one fails): no 429 from any twin; Cleverbridge at most 150 per
second per IP and 4 in flight; Clever at most 1200 per minute per token; no lost rotation (every
Cleanlist connection's stored active token is the one live token the twin holds for it, no
attempt left unsettled, nothing in the recovery spool); worker memory grows less than
RSS_GROWTH_BOUND between warm-up and the end; after each restart, scheduled tests succeed again
within RESUME_BOUND seconds; no page answers 500 outside the outage windows; every worker still
runs and answers a broker ping at the end, and beat still runs. Prints a summary table.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.outbound import control, database, start_sandbox  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/soak_switchboard"
CACHE_URL = "redis://127.0.0.1:6379/7"
BROKERS = {"redis": "redis://127.0.0.1:6379/8", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/{vhost}"}
QUEUE = "soak-celery"
VENDORS = ("cleverbridge", "clever", "cloverdx", "teletracker", "cleanlist")
PER_VENDOR = 40
WORKERS = 3
CLEVERBRIDGE_LIMIT, CLEVERBRIDGE_IN_FLIGHT, CLEVER_PER_MINUTE = 150, 4, 1200
RSS_GROWTH_BOUND = 0.5  # at most +50% between warm-up and the end, per worker
RESUME_BOUND = 90.0
RESUMED_AFTER = 10  # scheduled tests passing after the restart that count as "resumed"  # seconds from "the service is back" to a scheduled test succeeding again
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
               "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]
LOGS = ROOT / "var" / "soak"


def broker_url(broker: str) -> str:
    """The soak's broker URL; for RabbitMQ its own vhost "soak" when rabbitmqctl can make one."""
    if broker == "redis":
        return BROKERS["redis"]
    made = sh("rabbitmqctl", "-q", "add_vhost", "soak") == 0 or sh("rabbitmqctl", "-q", "list_permissions", "-p", "soak") == 0
    if made and sh("rabbitmqctl", "-q", "set_permissions", "-p", "soak", "guest", ".*", ".*", ".*") == 0:
        return BROKERS["rabbitmq"].format(vhost="soak")
    return BROKERS["rabbitmq"].format(vhost="")


def queue_length(url: str, purge: bool = False) -> int:
    """Messages waiting in the soak's queue on either broker (0 if the queue does not exist yet)."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=5) as conn:
            channel = conn.channel()
            if purge:
                return channel.queue_purge(QUEUE) or 0
            return channel.queue_declare(QUEUE, passive=True).message_count
    except Exception:
        return 0


def configure(db_url: str, broker: str) -> dict:
    env = {
        "DATABASE_URL": db_url, "CACHE_URL": CACHE_URL, "CELERY_BROKER_URL": broker, "DEBUG": "false",
        "SECRET_KEY": "soak-only-not-secret", "HTTPS_ONLY": "false", "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SWITCHBOARD_SKIP_DOTENV": "1", "CREDENTIAL_KEYS": "mHWpJZ5C_8lJthykFMT0jVbJunxHg-_GB5Z4P0YBXsU=",
        "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true", "DJANGO_SETTINGS_MODULE": "bench.soak_settings",
        "LOG_LEVEL": "WARNING", "CLEVERBRIDGE_RATE_LIMIT": str(CLEVERBRIDGE_LIMIT),
        "CLEVER_RATE_LIMIT_PER_MINUTE": str(CLEVER_PER_MINUTE), "OUTBOUND_MAX_WAIT_BACKGROUND": "10",
        "OUTBOUND_READ_TIMEOUT": "10", "RECOVERY_SPOOL_DIR": str(LOGS / "spool"), "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    return {**os.environ, **env}


def sh(*cmd: str, check: bool = False) -> int:
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=check).returncode


def redis_up() -> bool:
    return subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True).stdout.strip() == "PONG"


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (a prefork worker's pool), in MB."""
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return float("nan")
    return total + sum(rss_mb(int(child)) for child in children)


def now_utc() -> datetime:
    return datetime.now(UTC)


class Soak:
    def __init__(self, args, env: dict, sandbox: str):
        self.args, self.env, self.sandbox = args, env, sandbox
        self.stop = threading.Event()
        self.counts: collections.Counter[str] = collections.Counter()
        self.page_failures: list[tuple[float, str, str]] = []
        self.outages: list[list[float]] = []  # [start, back, resumed] (monotonic)
        self.lock = threading.Lock()
        self.procs: dict[str, subprocess.Popen] = {}
        self.rss: dict[str, list[float]] = {}

    # ----- set-up
    def setup(self) -> None:
        import django
        from django.core.management import call_command

        django.setup()
        import dashboard.celery  # noqa: F401  (the app this process enqueues rotations with)

        call_command("migrate", verbosity=0)
        from django.contrib.auth.models import Group, User

        from connections.sandbox import DEMO_CREDENTIALS
        from connections.scheduling import ensure_periodic_tasks
        from connections.services.audit import Actor
        from connections.services.vault import connection_create

        admin = User.objects.create_user("soak-admin", password="soak-password-not-secret")
        admin.groups.add(Group.objects.get(name="admin"))
        self.admin_id = admin.pk
        actor = Actor(label="soak")
        for vendor in VENDORS:
            for i in range(PER_VENDOR):
                secret, options = dict(DEMO_CREDENTIALS[vendor]), None
                if vendor == "cleanlist":
                    secret = {"token": secrets.token_hex(20)}
                    control(self.sandbox, "POST", "cleanlist/credentials", {"token": secret["token"],
                                                                             "services": ["email_verify"]})
                    options = {"test_service": "email_verify"}
                connection_create(name=f"soak-{vendor}-{i}", provider=vendor, base_url=f"{self.sandbox}/{vendor}",
                                  secret=secret, options=options, test_interval=self.args.interval, actor=actor)
        ensure_periodic_tasks()
        # Spread the schedules over the interval (beat runs each one `interval` after its last run).
        from django.utils import timezone
        from django_celery_beat.models import PeriodicTask

        now = timezone.now()
        for task in PeriodicTask.objects.filter(name__startswith="connection-test:"):
            PeriodicTask.objects.filter(pk=task.pk).update(
                last_run_at=now - timezone.timedelta(seconds=random.uniform(0, self.args.interval)))

    def start_processes(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        celery = [sys.executable, "-m", "celery", "-A", "dashboard"]
        for i in range(WORKERS):
            name = f"worker{i}"
            self.procs[name] = subprocess.Popen(
                celery + ["worker", "--pool", "prefork", "--concurrency", "3", "-Q", QUEUE, "-n", f"soak{i}@%h",
                          "-l", "warning", "--without-gossip", "--without-mingle"],
                cwd=ROOT, env=self.env, stdout=open(LOGS / f"{name}.log", "w"), stderr=subprocess.STDOUT)
        self.procs["beat"] = subprocess.Popen(
            celery + ["beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler", "-l", "warning",
                      "--pidfile=", "--max-interval", "2"],
            cwd=ROOT, env=self.env, stdout=open(LOGS / "beat.log", "w"), stderr=subprocess.STDOUT)

    # ----- load in this process
    def guarded(self, name: str, body, pause: float) -> None:
        from django import db

        while not self.stop.is_set():
            try:
                body()
                self.counts[f"{name}:ok"] += 1
            except Exception as exc:  # an outage: count it, drop the dead connection, go on
                self.counts[f"{name}:error"] += 1
                self.counts[f"{name}:error:{type(exc).__name__}"] += 1
                db.connection.close()
                time.sleep(0.5)
            self.stop.wait(pause)
        db.connection.close()

    def bulk(self, vendor: str, repeat: int):
        from connections.models import Connection
        from connections.services.audit import Actor
        from connections.services.testing import connection_call

        path = {"cleverbridge": "/connection/test", "clever": "/v3.0/districts"}[vendor]
        names = [f"soak-{vendor}-{i}" for i in range(PER_VENDOR)]

        def body():
            connection = Connection.objects.get(name=random.choice(names))
            results = connection_call(connection=connection, method="GET", path=path, actor=Actor(label="soak-bulk"),
                                      repeat=repeat)
            for r in results:
                self.counts[f"bulk-{vendor}:{r.outcome}"] += 1

        return body

    def browse(self):
        from django.contrib.auth.models import User
        from django.test import Client

        web = Client(raise_request_exception=False)
        web.force_login(User.objects.get(pk=self.admin_id))
        pages = ["/", "/log/", "/errors/", "/connections/", "/log/?outcome=throttled"]

        def body():
            url = random.choice(pages + [f"/connections/soak-{random.choice(VENDORS)}-{random.randrange(PER_VENDOR)}/"])
            try:
                status = web.get(url).status_code
            except Exception as exc:
                status = type(exc).__name__
            if status != 200 and status != 302:
                with self.lock:
                    self.page_failures.append((time.monotonic(), url, str(status)))
                if status == 302:  # signed out (sessions live in the database): sign in again
                    web.force_login(User.objects.get(pk=self.admin_id))
                raise RuntimeError(f"{url}: {status}")

        return body

    def rotate(self):
        from connections import tasks
        from connections.models import Connection

        def body():
            pk = Connection.objects.get(name=f"soak-cleanlist-{random.randrange(PER_VENDOR)}").pk
            tasks.rotate_credentials.apply_async(args=[pk], kwargs={"actor_label": "soak-operator", "via": "user"})
            self.counts["rotations:enqueued"] += 1

        return body

    # ----- faults
    def scheduled_ok_since(self, since: datetime) -> bool:
        from django import db

        from connections.models import RequestLog

        try:
            # Several, so a test already running when the service came back does not count.
            return RequestLog.objects.filter(operation="test", triggered_by="schedule", outcome="ok",
                                             started_at__gt=since).count() >= RESUMED_AFTER
        except Exception:
            db.connection.close()
            return False

    def outage(self, what: str, down, up) -> None:
        start = time.monotonic()
        print(f"[{self.elapsed():5.0f}s] restarting {what}", flush=True)
        down()
        up()
        back = time.monotonic()
        back_at = now_utc()
        resumed = float("nan")
        while time.monotonic() - back < RESUME_BOUND + 30:
            if self.scheduled_ok_since(back_at):
                resumed = time.monotonic()
                break
            time.sleep(0.5)
        self.outages.append([start, back, resumed, what])
        print(f"[{self.elapsed():5.0f}s] {what}: down+up {back - start:.1f} s, scheduled tests OK again "
              f"{resumed - back:.1f} s later", flush=True)

    def restart_redis(self) -> None:
        def down():
            sh("redis-cli", "-p", "6379", "shutdown", "nosave")
            time.sleep(2)

        def up():
            sh(*REDIS_START)
            while not redis_up():
                time.sleep(0.2)

        self.outage("Redis", down, up)

    def restart_postgres(self) -> None:
        version = sorted(os.listdir("/etc/postgresql"))[-1]

        def up():
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                           check=True, stdout=subprocess.DEVNULL)

        self.outage("PostgreSQL", lambda: None, up)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def sample_rss(self, label: str) -> None:
        for name, proc in self.procs.items():
            if name.startswith("worker"):
                self.rss.setdefault(name, []).append(rss_mb(proc.pid))

    def workers_answering(self) -> set[str]:
        """The soak workers that answer a remote-control ping through the broker right now."""
        from dashboard.celery import app

        answered: set[str] = set()
        for _ in range(3):
            try:
                for reply in app.control.ping(timeout=3):
                    answered.update(name.split("@")[0] for name in reply)
            except Exception:
                pass
            if len(answered) == WORKERS:
                break
        return answered

    def schedule(self) -> list:
        """Restarts as (seconds into the run, action): Redis N times spread over 20-90 % of the run
        (once: at 1/3), PostgreSQL once at 2/3."""
        if self.args.no_restarts:
            return []
        n, seconds = self.args.redis_restarts, self.args.seconds
        at = [0.33] if n == 1 else [0.2 + 0.7 * i / (n - 1) for i in range(n)]
        events = [(f * seconds, self.restart_redis) for f in at] + [(0.66 * seconds, self.restart_postgres)]
        return sorted(events, key=lambda e: e[0])

    # ----- the run
    def run(self) -> int:
        self.setup()
        self.start_processes()
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self.guarded, args=(n, b, p), daemon=True, name=n) for n, b, p in (
            ("bulk-cleverbridge-a", self.bulk("cleverbridge", 50), 0.0),
            ("bulk-cleverbridge-b", self.bulk("cleverbridge", 50), 0.0),
            ("bulk-clever", self.bulk("clever", 50), 0.0),
            ("browse", self.browse(), 0.2),
            ("rotate", self.rotate(), self.args.rotate_every),
        )]
        for t in threads:
            t.start()
        seconds = self.args.seconds
        warm = min(30.0, seconds * 0.15)
        time.sleep(warm)
        self.sample_rss("start")
        for at, action in self.schedule():
            time.sleep(max(0.0, at - self.elapsed()))
            action()
        time.sleep(max(0.0, seconds - self.elapsed()))
        answering = self.workers_answering()
        alive = {name: ("up" if proc.poll() is None else "DEAD")
                 + ("" if name == "beat" else (", answers" if f"soak{name[-1]}" in answering else ", no answer"))
                 for name, proc in self.procs.items()}
        self.sample_rss("end")
        self.stop.set()
        for t in threads:
            t.join(timeout=60)
        self.shutdown()
        return self.report(alive)

    def shutdown(self) -> None:
        beat = self.procs.get("beat")
        if beat:
            beat.terminate()
            beat.wait(timeout=15)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # let the workers finish what is queued (rotations included)
            if queue_length(self.env["CELERY_BROKER_URL"]) == 0:
                break
            time.sleep(1)
        time.sleep(5)
        for name, proc in self.procs.items():
            if name.startswith("worker"):
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()

    # ----- the verdict
    def report(self, alive: dict) -> int:
        import requests
        from django import db
        from django.db.models import Count

        from connections.models import Connection, Credential, RequestLog, RotationAttempt
        from connections.rotation import reconcile_rotations, spool

        db.connection.close()
        reconcile_rotations()  # what a dead or restarted worker left is settled, as beat would
        rows = RequestLog.objects.count()
        by_outcome = dict(RequestLog.objects.values_list("outcome").annotate(n=Count("id")))
        stats = {v: control(self.sandbox, "GET", f"{v}/stats") for v in VENDORS}
        sent = sum(s["requests"] for s in stats.values())
        too_many = sum(max(s.get("rate_limited", 0), s["by_status"].get("429", 0)) for s in stats.values())  # one 429 counts in both
        cb, cl = stats["cleverbridge"], stats["clever"]
        rotations = dict(RotationAttempt.objects.values_list("state").annotate(n=Count("id")))
        mismatched = []
        for connection in Connection.objects.filter(provider="cleanlist"):
            token = Credential.objects.get(connection=connection, state="active").secret.reveal()["token"]
            resp = requests.post(f"{self.sandbox}/cleanlist/api/email_verify/", json={"email": "a@example.com"},
                                 headers={"Authorization": f"Token {token}"}, timeout=10)
            if resp.status_code != 200:
                mismatched.append(connection.name)
        live = stats["cleanlist"]["live_tokens"] - 1  # the twin's own demo token
        unsettled = RotationAttempt.objects.filter(state__in=["started", "outcome_unknown"]).count()
        spooled = len(spool.pending())
        growth = {n: (v[-1] - v[0]) / v[0] for n, v in self.rss.items() if len(v) == 2}
        resumes = [(o[3], o[1] - o[0], o[2] - o[1]) for o in self.outages]
        windows = [(o[0], (o[2] if o[2] == o[2] else o[1] + RESUME_BOUND) + 5) for o in self.outages]
        page_500_outside = [f for f in self.page_failures if not any(a <= f[0] <= b for a, b in windows)]
        pages_ok = self.counts["browse:ok"]

        checks = [
            ("no 429 from any twin", too_many == 0, f"{too_many}"),
            ("Cleverbridge max per second per IP <= 150", cb["max_per_second"] <= CLEVERBRIDGE_LIMIT,
             f"{cb['max_per_second']}"),
            ("Cleverbridge max in flight <= 4", cb["max_in_flight"] <= CLEVERBRIDGE_IN_FLIGHT, f"{cb['max_in_flight']}"),
            ("Clever max per minute per token <= 1200", cl["max_per_minute_by_token"] <= CLEVER_PER_MINUTE,
             f"{cl['max_per_minute_by_token']}"),
            ("no lost rotation: stored token live at the twin", not mismatched,
             f"{PER_VENDOR - len(mismatched)}/{PER_VENDOR} match" + (f" ({', '.join(mismatched[:5])})" if mismatched else "")),
            ("no lost rotation: one live token per connection", live == PER_VENDOR, f"{live} live for {PER_VENDOR}"),
            ("no rotation left unsettled, nothing spooled", unsettled == 0 and spooled == 0,
             f"{unsettled} unsettled, {spooled} spooled"),
            (f"worker RSS growth < {RSS_GROWTH_BOUND:.0%}", bool(growth) and all(g < RSS_GROWTH_BOUND for g in growth.values()),
             ", ".join(f"{n} {self.rss[n][0]:.0f}->{self.rss[n][1]:.0f} MB" for n in sorted(growth))),
        ]
        for what, down, resumed in resumes:
            checks.append((f"{what} restart: scheduled tests resume < {RESUME_BOUND:.0f} s", resumed <= RESUME_BOUND,
                           f"down {down:.1f} s, resumed {resumed:.1f} s after"))
        checks += [
            ("no page error outside outage windows", not page_500_outside,
             f"{pages_ok} pages OK, {len(self.page_failures)} failed in outages, {len(page_500_outside)} outside"
             + (f" e.g. {page_500_outside[0][1:]}" if page_500_outside else "")),
            ("every worker alive and answering the broker at the end",
             all(v == "up, answers" for n, v in alive.items() if n != "beat"),
             "; ".join(f"{n} {v}" for n, v in alive.items() if n != "beat")),
            ("beat alive at the end", alive.get("beat") == "up", alive.get("beat", "not started")),
        ]

        print("\n== soak: figures")
        print(f"run {self.args.seconds:.0f} s, broker {self.args.broker}, {len(self.outages)} restarts "
              f"({sum(o[3] == 'Redis' for o in self.outages)} Redis), {len(VENDORS) * PER_VENDOR} connections tested "
              f"every {self.args.interval} s by {WORKERS} workers + beat")
        print(f"requests reaching the twins: {sent}  (" + ", ".join(f"{v} {s['requests']}" for v, s in stats.items()) + ")")
        print(f"RequestLog rows: {rows}  by outcome: {by_outcome}")
        print(f"bulk calls: { {k: v for k, v in sorted(self.counts.items()) if k.startswith('bulk') and ':error' not in k} }")
        print(f"load errors during outages: { {k: v for k, v in sorted(self.counts.items()) if ':error' in k} }")
        print(f"rotations: enqueued {self.counts['rotations:enqueued']}, journal {rotations}")
        print(f"Cleverbridge twin: max/s {cb['max_per_second']} (limit 150), max in flight {cb['max_in_flight']} "
              f"(limit 4), concurrency violations {cb.get('concurrency_violations')}, 429 {cb['rate_limited']}")
        print(f"Clever twin: max/min per token {cl['max_per_minute_by_token']} (limit 1200), 429 {cl['rate_limited']}")
        print("\n== soak: guarantees")
        width = max(len(c[0]) for c in checks)
        for what, ok, figure in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {what:<{width}}  {figure}")
        failed = [c for c in checks if not c[1]]
        print(f"\n{'all guarantees held' if not failed else f'{len(failed)} guarantee(s) FAILED'}; logs in {LOGS}")
        return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--interval", type=int, default=30, help="each connection's test interval (s, >= 30)")
    parser.add_argument("--rotate-every", type=float, default=3.0)
    parser.add_argument("--keep", action="store_true", help="keep the soak database afterwards")
    parser.add_argument("--no-restarts", action="store_true", help="leave Redis and PostgreSQL alone (a dry run)")
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis",
                        help="Celery broker: Redis db 8, or RabbitMQ on 127.0.0.1:5672 (guest/guest, vhost soak)")
    parser.add_argument("--redis-restarts", type=int, default=1, help="Redis restarts spread over the run (>= 1)")
    args, _ = parser.parse_known_args()  # bench/run.py passes its own arguments to every bench
    db_url = os.environ.get("SOAK_DATABASE_URL", DEFAULT_DB)
    if args.redis_restarts < 1:
        parser.error("--redis-restarts must be at least 1 (use --no-restarts for none)")
    env = configure(db_url, broker_url(args.broker))
    if not redis_up():
        print("Redis is not reachable on 127.0.0.1:6379; the soak needs it", file=sys.stderr)
        return 1
    for n in ("7", "8"):
        sh("redis-cli", "-n", n, "flushdb")
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


if __name__ == "__main__":
    sys.exit(main())
