"""Processes on the embedded default, as `make run` starts them: a SQLite file, the database cache,
no PostgreSQL, no Redis. For tests that prove state is shared by every process on the machine.

    env = embedded_env(tmp_path)
    out = run(env, "manage.py", "migrate")                  # any manage.py command
    ids = run_json(env, "-m", "tests.outbound.throttle_worker", "setup")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def embedded_env(tmp_path: Path) -> dict:
    """The environment of `make run`'s processes, on a fresh SQLite file under tmp_path. Secrets and
    the private-network allowance come from the test settings (already in os.environ)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings", "SWITCHBOARD_SKIP_DOTENV": "1",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'switchboard.sqlite3'}",
           "CELERY_BROKER_URL": "memory://"}  # never the project's var/broker queue
    for name in ("CACHE_URL", "TEST_DATABASE_URL"):
        env.pop(name, None)  # the embedded defaults
    return env


def run(env: dict, *argv: str, timeout: float = 120) -> str:
    """Run `python ARGV...` in the project directory; its stdout, or the test fails with its stderr."""
    proc = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def run_json(env: dict, *argv: str, timeout: float = 120):
    """run(), then the JSON on the last line of its output."""
    return json.loads(run(env, *argv, timeout=timeout).strip().splitlines()[-1])
