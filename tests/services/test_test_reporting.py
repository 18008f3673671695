"""What a test and the headroom report after throttling and retries (issue 11 items 6 and 7).

Against the sandbox twins over loopback, so the real client, retry policy and snapshot run.
"""

from __future__ import annotations

import re
import time

import pytest

from connections.models import Connection, RequestLog
from connections.outbound import client
from connections.providers.http import RequestSpec
from connections.sandbox import DEMO_CREDENTIALS
from connections.sandbox.vendors.clever import bucket_id
from connections.services.audit import Actor
from connections.services.testing import connection_test
from tests import factories
from tests.cli import run_cli

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
HX = {"HX-Request": "true"}
USER = Actor(label="tester", via="user")


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


WAIT_S = 0.35  # each retry's wait, instead of the policy's 1, 2, 4, 8, 16 s


@pytest.fixture
def short_backoff(monkeypatch):
    """Retries that wait WAIT_S each (real time, so the operation really lasts longer than its attempts)."""
    monkeypatch.setattr(client, "_sleep", lambda seconds: time.sleep(WAIT_S))


class TestHeadroomAfter429:
    def test_429_without_rate_headers_shows_none_left(self, vendors, viewer_client):
        conn = factories.connection("clever", name="clever-429", sandbox=vendors)
        assert connection_test(connection=conn, actor=USER).ok
        assert "1 / 1,200 per min" in text(viewer_client.get(f"/connections/{conn.name}/headroom/", headers=HX))
        vendors.set_fault("clever", "429_no_headers", count=9)
        for _ in range(9):
            client.send(conn, RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        page = text(viewer_client.get(f"/connections/{conn.name}/headroom/", headers=HX))
        assert "1,200 / 1,200 per min" in page and "0 left" in page, page
        conn.refresh_from_db()
        assert conn.rl_remaining == 0
        assert "1,200 / 1,200 per min" in text(viewer_client.get("/"))  # the overview too, not "nothing used"

    def test_the_vendors_own_429_shows_none_left_and_the_block(self, vendors, viewer_client):
        conn = factories.connection("clever", name="clever-window", sandbox=vendors)
        twin = vendors.vendor("clever")
        # Someone else (another deployment with the same token) used this minute's 1200 requests.
        twin.windows[bucket_id(DEMO_CREDENTIALS["clever"]["token"])] = (int(twin.clock() // 60), 1200)
        client.send(conn, RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        assert RequestLog.objects.filter(connection=conn, status_code=429).exists()
        page = text(viewer_client.get(f"/connections/{conn.name}/headroom/", headers=HX))
        assert "1,200 / 1,200 per min" in page and "0 left" in page and "Blocked by the vendor until" in page
        assert "0 minutes" not in page  # a block ending within the minute says so

    def test_a_later_answer_with_headers_replaces_the_zero(self, vendors):
        conn = factories.connection("clever", name="clever-back", sandbox=vendors)
        vendors.set_fault("clever", "429_no_headers", count=1)
        client.send(conn, RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        assert Connection.objects.get(pk=conn.pk).rl_remaining == 0
        client.send(conn, RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        assert Connection.objects.get(pk=conn.pk).rl_remaining > 0


class TestDurationOverRetries:
    def test_result_reports_the_whole_operation_and_its_attempts(self, vendors, short_backoff):
        conn = factories.connection("clever", name="clever-502", sandbox=vendors)
        vendors.set_fault("clever", "html502")  # every try: the policy retries a 502 (within the user's wait)
        result = connection_test(connection=conn, actor=USER)
        tries = result.attempts
        assert tries >= 3 and not result.ok and result.status_code == 502
        last = RequestLog.objects.filter(connection=conn).order_by("-attempt").first()
        assert last.attempt == tries and last.duration_ms < 1000
        assert result.duration_ms >= (tries - 1) * WAIT_S * 1000  # the whole operation, waits included
        assert result.summary()["duration_ms"] == result.duration_ms
        conn.refresh_from_db()
        assert conn.last_test_result["duration_ms"] == result.duration_ms
        assert conn.last_test_result["attempts"] == tries

    def test_pages_say_the_total_and_the_attempts(self, vendors, operator_client, short_backoff):
        conn = factories.connection("clever", name="clever-tries", sandbox=vendors)
        vendors.set_fault("clever", "html502")
        panel = text(operator_client.post(f"/connections/{conn.name}/test/", headers=HX))
        tries = RequestLog.objects.filter(connection=conn).count()
        assert tries >= 3
        assert re.search(rf"HTTP 502 \d\.\d s over {tries} attempts", panel), panel
        overview = text(operator_client.get("/"))
        assert re.search(rf"HTTP 502 · \d\.\d s · {tries} attempts", overview), overview

    def test_cli_json_duration_is_the_whole_operation(self, vendors, short_backoff):
        conn = factories.connection("clever", name="clever-cli", sandbox=vendors)
        vendors.set_fault("clever", "html502")
        result = run_cli("test", conn.name, "--json")
        data = result.json()
        tries = data["attempts"]
        assert result.code == 1 and tries >= 3
        assert data["duration_ms"] >= (tries - 1) * WAIT_S * 1000
        plain = run_cli("test", conn.name)
        assert re.search(rf"HTTP 502 in \d\.\d s over {tries} attempts", plain.out), plain.out
