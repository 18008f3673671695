"""Limits on testing (issue 12 item 8): a per-user rate on Test, one Test all in flight, task time limits."""

from __future__ import annotations

import pytest
from django.urls import reverse

from connections import tasks
from connections.models import BatchRun
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
HX = {"HX-Request": "true"}


def test_test_button_answers_429_after_the_per_user_limit(operator_client, vendors, settings):
    settings.TEST_RATE_PER_MINUTE = 2
    connection = factories.connection("clever", sandbox=vendors)
    url = reverse("connection_test", args=[connection.name])
    codes = [operator_client.post(url, headers=HX).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    response = operator_client.post(url, headers=HX)
    assert response.status_code == 429 and "at most 2 per minute" in response.content.decode()


def test_second_test_all_shows_the_running_batch_instead_of_queuing(operator_client, vendors, settings):
    factories.connection("clever", sandbox=vendors)
    factories.connection("cleanlist", sandbox=vendors)
    first = operator_client.post(reverse("test_all"))
    second = operator_client.post(reverse("test_all"))
    assert BatchRun.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_test_tasks_have_time_limits():
    for task in (tasks.scheduled_test, tasks.run_test, tasks.run_test_in_batch):
        assert task.soft_time_limit and task.time_limit > task.soft_time_limit
