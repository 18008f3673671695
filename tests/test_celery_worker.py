"""A real Celery worker process, against Redis, runs a task end to end."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def start_worker(env_extra: dict | None = None) -> subprocess.Popen:
    """A real `celery worker` process on this test run's queue (its settings: dashboard.test_settings)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "--pool", "solo", "-l", "warning",
         "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-n", f"test-{os.getpid()}@%h", "--without-heartbeat",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def stop_worker(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def worker():
    proc = start_worker()
    yield proc
    stop_worker(proc)


@pytest.mark.celery_worker
@pytest.mark.services
def test_worker_runs_a_task(worker):
    from django.core.cache import cache

    from dashboard.celery import ping

    nonce = uuid.uuid4().hex
    # No result backend: the task proves itself through the shared (Redis) cache.
    ping.apply_async(args=[nonce], queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cache.get(f"ping:{nonce}") is None:
        assert worker.poll() is None, worker.stdout.read().decode()
        time.sleep(0.2)
    assert cache.get(f"ping:{nonce}") == "pong", "the worker did not run the task within 30 s"
