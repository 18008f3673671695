"""The Celery app. Tasks live in connections/tasks.py (autodiscovered); beat uses
django-celery-beat's database scheduler, so schedules are rows, not code."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

def _survive_broker_restart() -> None:
    """Keep workers alive across a Redis restart (celery 5.7 / kombu 5.7, found by bench/soak.py).

    After the broker drops, the consumer collects the broken connection and then closes it;
    closing the Redis channel tries to restore unacked messages through a client whose
    connection info is already gone, raises AttributeError, and the worker exits with
    "Unrecoverable error". There is nothing left to close at that point: log it and let the
    consumer reconnect as it does for any other connection loss.
    """
    import logging

    from celery.worker.consumer.consumer import Consumer

    original = Consumer.on_connection_error_after_connected
    if getattr(original, "_switchboard", False):
        return

    def on_connection_error_after_connected(self, exc):
        try:
            original(self, exc)
        except AttributeError as error:
            logging.getLogger(__name__).warning("closing the lost broker connection failed (%r); reconnecting", error)
            self.connection = None

    on_connection_error_after_connected._switchboard = True
    Consumer.on_connection_error_after_connected = on_connection_error_after_connected


_survive_broker_restart()

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="switchboard.ping")
def ping(nonce: str) -> None:
    """A trivial task: proves a worker consumes from the broker by leaving a mark in the shared cache."""
    from django.core.cache import cache

    cache.set(f"ping:{nonce}", "pong", timeout=300)
