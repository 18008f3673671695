"""Run the whole of Switchboard in the foreground: web server, Celery worker, Celery beat
(and, in demo mode, the sandbox vendors) until Ctrl-C, then stop them all cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run web server, Celery worker and beat (and the demo sandbox) together until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("SWITCHBOARD_BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--log-dir", help="write each process's output to DIR/<name>.log instead of this "
                                              "terminal (tests/system reads them)")

    def handle(self, *args, **options):
        python = sys.executable
        bin_dir = os.path.dirname(python)
        commands: dict[str, list[str]] = {}
        if settings.DEMO_MODE:
            commands["sandbox"] = [python, "manage.py", "runsandbox", "--port", str(settings.SANDBOX_PORT)]
        commands["web"] = [os.path.join(bin_dir, "gunicorn"), "dashboard.wsgi", "--bind", options["bind"],
                           "--workers", str(options["web_workers"]), "--threads", "4", "--timeout", "60",
                           "--access-logfile", "-", "--graceful-timeout", "5",
                           "--logger-class", "dashboard.gunicorn_logging.RedactingLogger"]
        commands["worker"] = [os.path.join(bin_dir, "celery"), "-A", "dashboard", "worker", "-l", "info",
                              "--concurrency", "2", "-n", "worker@%h"]
        commands["beat"] = [os.path.join(bin_dir, "celery"), "-A", "dashboard", "beat", "-l", "info"]

        procs: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        log_dir = options.get("log_dir")
        for name, cmd in commands.items():
            out = open(os.path.join(log_dir, f"{name}.log"), "ab") if log_dir else None  # noqa: SIM115
            # Own process groups: Ctrl-C reaches us once, and we stop each child in order.
            procs[name] = subprocess.Popen(cmd, cwd=settings.BASE_DIR, start_new_session=True,
                                           stdout=out, stderr=subprocess.STDOUT if out else None)
            if out:
                out.close()  # the child holds its own copy
        self.stdout.write(self.style.SUCCESS(
            f"Switchboard is running on http://{options['bind']} "
            f"({', '.join(procs)}). Press Ctrl-C to stop."
        ))
        exit_code = 0
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the others.")
                        exit_code = proc.returncode or 1
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            self._stop_all(procs)
        self.stdout.write("Stopped web server, worker, beat" + (" and sandbox." if "sandbox" in procs else "."))
        if exit_code:
            sys.exit(exit_code)

    def _stop_all(self, procs: dict[str, subprocess.Popen]) -> None:
        # SIGTERM to each main process only: Celery and gunicorn then shut their children down warmly.
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
