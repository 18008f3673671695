"""bench/soak.py's run: set-up, the worker and beat processes, the load threads, the restarts."""

from __future__ import annotations

import collections
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

from bench.outbound import control
from bench.soak_env import (
    LOGS,
    PER_VENDOR,
    QUEUE,
    RESUME_BOUND,
    RESUMED_AFTER,
    ROOT,
    VENDORS,
    WORKERS,
    now_utc,
    queue_length,
    redis_start,
    redis_stop,
    rss_mb,
)


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
            redis_stop()
            time.sleep(2)

        self.outage("Redis", down, redis_start)

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
        (once: at 1/3); PostgreSQL once at 2/3 with --restart-postgres."""
        if self.args.no_restarts:
            return []
        n, seconds = self.args.redis_restarts, self.args.seconds
        at = [0.33] if n == 1 else [0.2 + 0.7 * i / (n - 1) for i in range(n)]
        events = [(f * seconds, self.restart_redis) for f in at]
        if self.args.restart_postgres:
            events.append((0.66 * seconds, self.restart_postgres))
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
        # Memory is compared from a warm state: every worker up, its pool forked and answering.
        ready_by = time.monotonic() + 120
        while len(self.workers_answering()) < WORKERS and time.monotonic() < ready_by:
            time.sleep(1)
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
        from bench.soak_report import report

        return report(self, alive)

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
