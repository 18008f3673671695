"""Celery tasks for alerts (imported by dashboard/celery.py). Thin: ids in, services do the work."""

from celery import shared_task


@shared_task(name="connections.alert_tasks.evaluate_alerts", ignore_result=True)
def evaluate_alerts() -> int:
    from .alerts import evaluate

    return len(evaluate())


@shared_task(bind=True, name="connections.alert_tasks.deliver_alert", ignore_result=True, max_retries=4)
def deliver_alert(self, delivery_id: int) -> str:
    from .alerts import DeliveryFailed, deliver

    try:
        return deliver(delivery_id, final_attempt=self.request.retries >= self.max_retries)
    except DeliveryFailed as exc:
        # 10 s, 20 s, 40 s, 80 s: a flaky SMTP server or webhook gets a few minutes to recover.
        raise self.retry(exc=exc, countdown=10 * 2 ** self.request.retries) from None
