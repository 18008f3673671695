"""The features that run in Celery, end to end with a real worker process against Redis and
the test database: "Test all" with its progress bar, a rotation from the page, alert delivery."""

from __future__ import annotations

import time

import pytest
from django.db import connection as db_connection
from django.urls import reverse

from connections import alerts
from connections.models import AlertDelivery, Connection, Health, RotationAttempt
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from tests import factories
from tests.dashboard.test_celery_worker import start_worker, stop_worker
from tests.receivers import WebhookReceiver

pytestmark = [pytest.mark.services, pytest.mark.celery_worker, pytest.mark.process, pytest.mark.django_db(transaction=True)]
HX = {"HX-Request": "true"}


@pytest.fixture
def db_worker():
    """A worker that uses this test's database (transactional tests commit, so it sees the rows)."""
    name = db_connection.settings_dict["NAME"]
    proc = start_worker({"TEST_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"})
    yield proc
    stop_worker(proc)


def wait_for(predicate, worker, seconds=40, what="the worker"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        assert worker.poll() is None, worker.stdout.read().decode()[-3000:]
        time.sleep(0.3)
    raise AssertionError(f"{what} did not finish within {seconds} s")


def test_test_all_runs_every_connection_through_the_worker(client, vendors, db_worker):
    made = [factories.connection(p, sandbox=vendors) for p in ("clever", "cleanlist", "cloverdx")]
    client.force_login(factories.user("operator"))
    response = client.post(reverse("test_all"), headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<progress" in html
    batch_id = html.split("/test-all/")[1].split("/")[0]
    progress_url = reverse("test_all_progress", args=[batch_id])

    def done():
        return "Tested 3 connections" in client.get(progress_url, headers=HX).content.decode()

    wait_for(done, db_worker, what="Test all")
    final = client.get(progress_url, headers=HX)
    assert "3 passed" in final.content.decode()
    assert final["HX-Trigger"] and "connections-tested" in final["HX-Trigger"]
    for c in made:
        c.refresh_from_db()
        assert c.health == Health.OK and c.last_test_at is not None


def test_rotation_from_the_page_runs_in_the_worker(client, vendors, db_worker):
    c = factories.connection("cleanlist", sandbox=vendors)
    old = DEMO_CREDENTIALS["cleanlist"]["token"]
    client.force_login(factories.user("operator"))
    response = client.post(reverse("connection_rotate", args=[c.name]), headers=HX)
    assert response.status_code == 200
    wait_for(lambda: RotationAttempt.objects.filter(connection=c, state="succeeded").exists(), db_worker,
             what="the rotation")
    attempt = RotationAttempt.objects.get(connection=c)
    status = client.get(reverse("connection_rotation_status", args=[c.name, attempt.pk]), headers=HX)
    assert "Rotated." in status.content.decode()
    stats = vendors.stats("cleanlist")
    assert [call["token_was_current"] for call in stats["refresh_calls"]] == [True]
    new = c.credentials.get(state="active").reveal()["token"]
    assert new != old
    # The stored token is the one the vendor now accepts (an authorised service, not pub_echo).
    from connections.services.testing import connection_call

    [result] = connection_call(connection=c, method="POST", path="/email_verify/", data={"email": "a@example.com"},
                               actor=Actor(label="t"))
    assert result.ok, result.error_message


def test_alert_is_delivered_by_the_worker(db_worker):
    with WebhookReceiver() as hook:
        channel = alerts.channel_create(name="hook", kind="webhook", target=hook.url, actor=Actor(label="t"))
        c = factories.connection("clever", secret={"token": "worker-alert-token"})
        Connection.objects.filter(pk=c.pk).update(health=Health.FAILING, health_reason="HTTP 503")
        alerts.evaluate()
        wait_for(lambda: AlertDelivery.objects.filter(channel=channel, state="sent").exists(), db_worker,
                 what="the alert delivery")
        assert len(hook.received) == 1 and "HTTP 503" in hook.received[0]["text"]
