"""A real Celery worker process, against Redis, runs a task end to end."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


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
@pytest.mark.process
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


@pytest.mark.services
def test_a_channel_outliving_its_broker_connection_fails_as_a_connection_error():
    """After a broker restart the consumer collects the lost connection and reconnects; the old
    Redis channel is still closed (restoring unacked messages) and still acked on by tasks that
    finish later (acks_late). Both used to raise AttributeError ('NoneType' … 'hostname' or 'client'), which
    Celery does not treat as a connection error: the worker exited (bench/soak.py, issue 13).
    Now both are connection errors, which Celery logs and survives."""
    import logging

    from kombu import Connection, Exchange, Queue

    import dashboard.celery  # noqa: F401  (installs the fix)

    queue = Queue(f"{settings.CELERY_TASK_DEFAULT_QUEUE}-reconnect", Exchange("", type="direct"),
                  routing_key=f"{settings.CELERY_TASK_DEFAULT_QUEUE}-reconnect")
    with Connection(settings.CELERY_BROKER_URL) as conn:
        conn.SimpleQueue(queue).put({"n": 1})
        channel = conn.channel()
        message = channel.basic_get(queue.name, no_ack=False)
        assert message is not None
        errors = conn.connection_errors + conn.channel_errors
        conn.collect()  # what the consumer does with a connection the broker dropped
        channel._disconnect_pools()  # the lost connection's pool is gone too (as after a restart)
        # The ack path (a task finishing after the reconnect): logged, not raised.
        message.ack_log_error(logging.getLogger("test"), errors)
        with pytest.raises(conn.connection_errors):  # what Celery catches, not AttributeError
            message.ack()
    with Connection(settings.CELERY_BROKER_URL) as conn:  # a fresh connection works as ever
        conn.SimpleQueue(queue).clear()
