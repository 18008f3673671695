"""Run the whole of Switchboard in the foreground: web server, Celery worker, Celery beat
(and, in demo mode, the sandbox vendors) until Ctrl-C, then stop them all cleanly.

A child that exits on its own is started again after a pause that doubles with each crash
(1 s, 2 s, 4 s ... at most 30 s; back to 1 s once it has stayed up a minute). One that crashes
5 times within a minute is broken, not unlucky: runall then stops everything and says which.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from django.conf import settings
from django.core.management.base import BaseCommand

FIRST_BACKOFF = 1.0  # seconds before the first restart; doubles with each crash in a row
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # up this long: the next crash starts the backoff from FIRST_BACKOFF again
CRASH_LIMIT = 5  # this many crashes of one child within CRASH_WINDOW seconds: give up
CRASH_WINDOW = 60.0


@dataclass
class Child:
    name: str
    cmd: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restart_at: float | None = None  # set while it waits to be started again
    in_a_row: int = 0  # crashes since it last stayed up STABLE_AFTER seconds
    crashes: deque = field(default_factory=deque)  # monotonic times of recent crashes


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Command(BaseCommand):
    help = ("Run web server, Celery worker and beat (and the demo sandbox) together until Ctrl-C; "
            "restart any of them that dies.")

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("SWITCHBOARD_BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--log-dir", help="write each process's output to DIR/<name>.log instead of this "
                                              "terminal (tests/system reads them)")

    def handle(self, *args, **options):
        _metrics_dir()
        python = sys.executable
        bin_dir = os.path.dirname(python)
        commands: dict[str, list[str]] = {}
        if settings.DEMO_MODE:
            commands["sandbox"] = [python, "manage.py", "runsandbox", "--port", str(settings.SANDBOX_PORT)]
        commands["web"] = [os.path.join(bin_dir, "gunicorn"), "dashboard.wsgi", "--bind", options["bind"],
                           "--workers", str(options["web_workers"]), "--threads", "4", "--timeout", "60",
                           "--access-logfile", "-", "--graceful-timeout", "5",
                           "--config", "python:dashboard.gunicorn_config"]
        # LOG_FORMAT=json: no start-up banners, only log lines (JSON objects).
        celery = [os.path.join(bin_dir, "celery"), "-A", "dashboard", *(["--quiet"] if settings.LOG_FORMAT == "json" else [])]
        commands["worker"] = [*celery, "worker", "-l", "info", "--concurrency", "2", "-n", "worker@%h"]
        commands["beat"] = [*celery, "beat", "-l", "info"]

        children = [Child(name, cmd) for name, cmd in commands.items()]
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.log_dir = options.get("log_dir")
        for child in children:
            self._start(child)
        self.stdout.write(self.style.SUCCESS(
            f"Switchboard is running on http://{options['bind']} "
            f"({', '.join(commands)}). Press Ctrl-C to stop."
        ))
        self.stdout.flush()
        broken: Child | None = None
        try:
            while not stopping and broken is None:
                now = time.monotonic()
                for child in children:
                    if child.proc is not None and child.proc.poll() is not None:
                        if not self._crashed(child, now):
                            broken = child
                            break
                    elif child.restart_at is not None and now >= child.restart_at:
                        self._start(child)
                        self.stderr.write(f"{child.name} restarted (pid {child.proc.pid}).")
                time.sleep(0.2)
        finally:
            self._stop_all(children)
        self.stdout.write("Stopped web server, worker, beat" + (" and sandbox." if "sandbox" in commands else "."))
        if broken is not None:
            self.stderr.write(self.style.ERROR(
                f"{broken.name} crashed {CRASH_LIMIT} times within {CRASH_WINDOW:.0f} s; stopped everything. "
                f"Its last lines above say why; fix that and run again."))
            sys.exit(1)

    def _start(self, child: Child) -> None:
        # --log-dir: each child appends to its own file (a restart continues the same file).
        out = open(os.path.join(self.log_dir, f"{child.name}.log"), "ab") if self.log_dir else None  # noqa: SIM115
        # Own process groups: Ctrl-C reaches us once, and we stop each child in order.
        child.proc = subprocess.Popen(child.cmd, cwd=settings.BASE_DIR, start_new_session=True,
                                      stdout=out, stderr=subprocess.STDOUT if out else None)
        if out:
            out.close()  # the child holds its own copy
        child.started = time.monotonic()
        child.restart_at = None

    def _crashed(self, child: Child, now: float) -> bool:
        """Log the exit and schedule the restart; False when the child crashes too often to go on."""
        proc = child.proc
        child.proc = None
        # What the dead main process leaves behind (gunicorn workers still holding the port, Celery
        # pool processes) would stop its replacement from starting: end its whole process group.
        _kill_group(proc.pid)
        if now - child.started >= STABLE_AFTER:
            child.in_a_row = 0
        child.in_a_row += 1
        child.crashes.append(now)
        while child.crashes and now - child.crashes[0] > CRASH_WINDOW:
            child.crashes.popleft()
        what = f"{child.name} (pid {proc.pid}) {describe_exit(proc.returncode)}"
        if len(child.crashes) >= CRASH_LIMIT:
            self.stderr.write(self.style.ERROR(f"{what}."))
            return False
        delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (child.in_a_row - 1))
        child.restart_at = now + delay
        self.stderr.write(self.style.WARNING(
            f"{what}; restarting it in {delay:.0f} s ({len(child.crashes)} crash(es) within {CRASH_WINDOW:.0f} s, "
            f"giving up at {CRASH_LIMIT})."))
        return True

    def _stop_all(self, children: list[Child]) -> None:
        # SIGTERM to each main process only: Celery and gunicorn then shut their children down warmly.
        running = [child.proc for child in children if child.proc is not None]
        for proc in running:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()


def _metrics_dir() -> None:
    """Prometheus multiprocess mode for every child (web workers and Celery pool processes write their
    counters there; /metrics sums them): an empty directory at each start, so counts begin at zero
    and no dead process of a previous run is summed."""
    import shutil
    from pathlib import Path

    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.VAR_DIR / "metrics")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    os.environ["SWITCHBOARD_METRICS_DIR_READY"] = "1"


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
