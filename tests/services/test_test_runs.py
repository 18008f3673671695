"""The Test button queues the test in Celery and the page polls for its result (issue 12 item 8):
nothing is sent from the web thread; the poll shows waiting, running, the result, a missing
worker and a test stopped by its time limit. (With a worker of `manage.py runall`, on both the
embedded default and PostgreSQL/Redis: tests/system, press_test.)"""

from __future__ import annotations

import re
import time

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.cache import cache

from connections import tasks
from connections.models import RequestLog
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db]
HX = {"HX-Request": "true"}


def press(client, connection, **data) -> tuple[str, str]:
    response = client.post(f"/connections/{connection.name}/test/", data, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    poll = re.search(r'hx-get="(/connections/[^"]+/test/([0-9a-f]{32})/[^"]*)"', html)
    assert poll, html
    return poll.group(1).replace("&amp;", "&"), poll.group(2)


def work(connection, run_id: str, label: str = "operator1"):
    """What a worker process does with the queued message."""
    return tasks.run_test.apply(args=[connection.pk, label, run_id], task_id=run_id)


def test_the_button_queues_and_the_panel_polls_until_the_result(operator_client, vendors):
    connection = factories.connection("clever", sandbox=vendors)
    poll, run_id = press(operator_client, connection)
    assert vendors.stats("clever")["requests"] == 0  # nothing sent by the web thread
    waiting = operator_client.get(poll, headers=HX).content.decode()
    assert 'data-testid="test-running"' in waiting and "Waiting for a worker" in waiting

    work(connection, run_id)

    answer = operator_client.get(poll, headers=HX)
    html = answer.content.decode()
    assert "test-running" not in html and "HTTP 200" in html and "badge-ok" in html
    assert '"connection-health"' in answer["HX-Trigger"]
    assert vendors.stats("clever")["requests"] == 1
    row = RequestLog.objects.get(connection=connection)
    assert row.task_id == run_id and row.operation == "test" and row.triggered_by == "user"


def test_an_overview_rows_test_polls_for_the_compact_result(operator_client, vendors):
    connection = factories.connection("clever", sandbox=vendors)
    poll, run_id = press(operator_client, connection, next="overview")
    assert poll.endswith("?compact=1")
    work(connection, run_id)
    html = operator_client.get(poll, headers=HX).content.decode()
    assert "HTTP 200" in html and "What this test proves" not in html


def test_a_test_no_worker_takes_says_so(operator_client, vendors):
    connection = factories.connection("clever", sandbox=vendors)
    poll, run_id = press(operator_client, connection)
    state = cache.get(f"test-run:{run_id}")
    cache.set(f"test-run:{run_id}", {**state, "queued_at": time.time() - 30}, 60)
    html = operator_client.get(poll, headers=HX).content.decode()
    assert "is a Celery worker running?" in html and 'data-poll="1"' in html  # still waiting


def test_a_test_stopped_by_its_time_limit_says_so(operator_client, vendors, monkeypatch):
    connection = factories.connection("clever", sandbox=vendors)
    poll, run_id = press(operator_client, connection)

    def stalls(**kwargs):
        raise SoftTimeLimitExceeded()  # what Celery raises in the task at TEST_SOFT_TIME_LIMIT

    monkeypatch.setattr("connections.services.testing.connection_test", stalls)
    work(connection, run_id)
    html = operator_client.get(poll, headers=HX).content.decode()
    assert f"did not finish within its {tasks.TEST_TIME_LIMIT} s time limit" in html
    assert "test-running" not in html


def test_without_javascript_the_test_is_queued_and_said_so(operator_client, vendors):
    connection = factories.connection("clever", sandbox=vendors)
    response = operator_client.post(f"/connections/{connection.name}/test/", follow=True)
    assert "Test of " + connection.name + " queued" in response.content.decode()
    assert vendors.stats("clever")["requests"] == 0


def test_an_unknown_run_is_not_an_error(operator_client, vendors):
    connection = factories.connection("clever", sandbox=vendors)
    html = operator_client.get(f"/connections/{connection.name}/test/{'0' * 32}/", headers=HX).content.decode()
    assert "no longer known" in html
    assert operator_client.get(f"/connections/{connection.name}/test/{'0' * 32}/").status_code == 302
