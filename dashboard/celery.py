"""The Celery app. Tasks live in connections/tasks.py (autodiscovered); beat uses
django-celery-beat's database scheduler, so schedules are rows, not code."""

import os

from celery import Celery
from celery.signals import setup_logging, task_postrun, task_prerun, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

def _survive_broker_restart() -> None:
    """Keep workers alive across a Redis restart (celery 5.7 / kombu 5.7, found by bench/soak.py).

    When the broker drops, the consumer collects the lost connection, which detaches the
    kombu transport from its connection (``transport.client = None``), and reconnects on a
    new one. The old Redis channels outlive that: closing them restores unacked messages,
    and a task that finishes afterwards (``acks_late``) acks its message on the channel it
    came from. Both build a Redis client from ``transport.client``, so both raised
    ``AttributeError: 'NoneType' object has no attribute 'hostname'``, which is not a
    connection error: it escaped Celery's ``ignore_errors`` on close and
    ``Message.ack_log_error`` on ack, and the worker exited ("Unrecoverable error").

    The fix is at that one place: a channel whose connection is gone raises
    ``redis.ConnectionError``, as py-amqp raises ``RecoverableConnectionError`` for an ack on a
    closed AMQP connection. Celery already handles that: the close is skipped, the ack is
    logged ("Couldn't ack") and the worker goes on with its new connection. The message of
    that ack stays in Redis's unacked set (if Redis kept it) and is delivered again after
    the visibility timeout: at least once, as for any worker lost mid-task.
    """
    from kombu.transport import redis as kombu_redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    original = kombu_redis.Channel._connparams
    if getattr(original, "_switchboard", False):
        return

    def _connparams(self, asynchronous=False):
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection of this channel is closed (lost and replaced)")
        return original(self, asynchronous=asynchronous)

    _connparams._switchboard = True
    kombu_redis.Channel._connparams = _connparams


_survive_broker_restart()


def _atomic_exchange_tables() -> None:
    """Exchange tables of the filesystem broker (the embedded default) that a killed process cannot break.

    kombu 5.7's filesystem transport rewrites ``<exchange>.exchange`` in place: it opens the file
    with "wb" (truncating it) or "rb+" and writes the JSON after taking the lock. A process killed
    between the two (the OOM killer, a SIGKILL in tests/test_supervisor.py), or a second process
    that opens the new empty file before its creator locks it, leaves an empty table; from then on
    every publish raises ``JSONDecodeError`` and no task is queued until someone deletes the file.

    Here the table is written whole to a temporary file and moved into place (``os.replace`` is
    atomic), under a lock on a sidecar ``<exchange>.lock`` file, so a reader sees the old table or
    the new one, never half of one. A table already left empty reads as no bindings and is
    rewritten by the next bind (every worker binds its queues when it starts).
    """
    from kombu.transport import filesystem as fs

    if getattr(fs.Channel._queue_bind, "_switchboard", False):
        return

    def read_table(file):
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return []
        try:
            return [fs.exchange_queue_t(*q) for q in fs.loads(fs.bytes_to_str(raw))] if raw.strip() else []
        except ValueError:  # cut short before this patch: rebuilt by the next bind
            return []

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        value = fs.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        guard = file.with_suffix(".lock").open("a+b")
        try:
            fs.lock(guard, fs.LOCK_EX)
            queues = read_table(file)
            if value not in queues:
                queues.insert(0, value)
                tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
                tmp.write_bytes(fs.str_to_bytes(fs.dumps(queues)))
                os.replace(tmp, file)
        finally:
            fs.unlock(guard)
            guard.close()

    def get_table(self, exchange):
        return read_table(self._exchange_file(exchange))

    _queue_bind._switchboard = True
    fs.Channel._queue_bind = _queue_bind
    fs.Channel.get_table = get_table


_atomic_exchange_tables()

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _django_logging(**kwargs) -> None:
    """LOG_FORMAT=json: the worker and beat log through Django's LOGGING (JSON lines) instead of
    Celery's own format; connecting this receiver is what stops Celery configuring its own."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def _task_context(task_id=None, args=None, kwargs=None, **extra) -> None:
    from dashboard.logformat import task_context

    connection_id = (kwargs or {}).get("connection_id", args[0] if args else None)
    task_id_ = task_id or ""
    try:
        task_context(task_id_, connection_id)
    except Exception:  # the log context must never stop a task
        task_context(task_id_, None)


@app.on_after_configure.connect
def _json_logs(sender=None, **kwargs) -> None:
    """LOG_FORMAT=json: the receivers above, connected once Celery reads its configuration (before a
    worker or beat sets up logging). Not at import: this module is imported while a settings
    module that star-imports dashboard.settings (bench/settings.py) is still loading."""
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        setup_logging.connect(_django_logging)
        task_prerun.connect(_task_context)


@app.task(name="switchboard.ping")
def ping(nonce: str) -> None:
    """A trivial task: proves a worker consumes from the broker by leaving a mark in the shared cache."""
    from django.core.cache import cache

    cache.set(f"ping:{nonce}", "pong", timeout=300)


@task_postrun.connect
def _settle_writes(**kwargs) -> None:
    """The request log rows a task sent behind (dashboard/pgbackend) are settled when it ends:
    read back before the worker takes the next task, their errors logged under this task."""
    from dashboard.pgbackend.base import settle_all

    settle_all()


@worker_process_shutdown.connect
def _metrics_process_gone(pid=None, **kwargs) -> None:
    """Prometheus multiprocess mode: a pool process that exits leaves its counters (still summed)
    and drops its live gauges (connections/metrics.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
