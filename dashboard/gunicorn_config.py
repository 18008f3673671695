"""Gunicorn settings for Switchboard (`gunicorn -c python:dashboard.gunicorn_config dashboard.wsgi`;
`manage.py runall` passes it).

- Prometheus multiprocess mode: every worker writes its counters under PROMETHEUS_MULTIPROC_DIR
  (default var/metrics) and /metrics sums them. The directory is emptied when the server starts,
  unless runall already did (it shares the directory with the Celery workers it starts), and a
  worker that exits is marked dead.
- The workers' heartbeat files in /dev/shm where it exists (a RAM file system): gunicorn touches its
  file (fchmod) on every turn of a worker's loop, several times per request, and on a disk-backed
  /tmp that can block the worker (gunicorn's documentation of worker_tmp_dir says the same).
- Access log lines without set-password tokens (dashboard/gunicorn_logging.py); LOG_FORMAT=json
  makes gunicorn's own and its access log lines JSON objects like every other log line
  (dashboard/logformat.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_var = Path(os.environ.get("SWITCHBOARD_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var / "metrics"))

logger_class = "dashboard.gunicorn_logging.RedactingLogger"

if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    worker_tmp_dir = "/dev/shm"

if os.environ.get("LOG_FORMAT", "text").strip().lower() == "json":
    from dashboard.logformat import gunicorn_logconfig_dict

    logconfig_dict = gunicorn_logconfig_dict()


def on_starting(server) -> None:
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if not os.environ.get("SWITCHBOARD_METRICS_DIR_READY"):
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
