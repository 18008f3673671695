"""Triage first: the overview lists what needs a person at the top with how long it has been so,
headroom reads "used / limit per unit" on one line, and the alerts page shows what fires now apart
from the history."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from connections.models import AlertEvent, AlertState, MaintenanceWindow, RequestLog
from tests.factories import ConnectionFactory, RequestLogFactory
from tests.views.test_ops_pages import HX, text

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def overview_order(response) -> list[str]:
    return re.findall(r'<tr id="overview-([\w-]+)"', response.content.decode())


class TestOverviewTriage:
    def test_attention_failing_degraded_first_then_the_rest_healthy_last(self, viewer_client):
        now = timezone.now()
        ConnectionFactory(name="a-healthy", health="ok")
        ConnectionFactory(name="b-degraded", health="degraded", health_changed_at=now - timedelta(minutes=3))
        ConnectionFactory(name="c-never-tested", health="unknown")
        ConnectionFactory(name="d-failing", health="failing", health_changed_at=now - timedelta(minutes=12))
        ConnectionFactory(name="e-needs-attention", health="needs_attention", health_changed_at=now - timedelta(hours=2, minutes=5))
        ConnectionFactory(name="f-suspended", health="suspended")
        ConnectionFactory(name="g-failing", health="failing", health_changed_at=now - timedelta(minutes=1))
        ConnectionFactory(name="h-healthy", health="ok")
        order = ["e-needs-attention", "d-failing", "g-failing", "b-degraded", "f-suspended", "c-never-tested",
                 "a-healthy", "h-healthy"]
        assert overview_order(viewer_client.get("/")) == order
        # The rows htmx swaps in every few seconds keep the same order.
        assert overview_order(viewer_client.get("/", headers=HX)) == order

    def test_how_long_a_connection_has_been_in_trouble(self, viewer_client):
        now = timezone.now()
        ConnectionFactory(name="failing-one", health="failing", health_changed_at=now - timedelta(minutes=12, seconds=10))
        ConnectionFactory(name="attention-one", health="needs_attention", health_changed_at=now - timedelta(hours=3, minutes=4))
        ConnectionFactory(name="degraded-one", health="degraded", health_changed_at=now - timedelta(seconds=40))
        ConnectionFactory(name="healthy-one", health="ok", health_changed_at=now - timedelta(days=3))
        page = text(viewer_client.get("/"))
        assert "failing for 12 min" in page
        assert "needs attention for 3 h 4 min" in page
        assert "degraded for 40 s" in page
        assert "ok for" not in page.lower()  # healthy rows carry no duration

    def test_since_falls_back_to_the_last_passing_test(self, viewer_client):
        """Connections that failed before health changes were stamped: the last known good moment."""
        ConnectionFactory(name="old-failure", health="failing", health_changed_at=None,
                  last_ok_at=timezone.now() - timedelta(days=2, hours=1))
        ConnectionFactory(name="never-ok", health="failing")
        page = text(viewer_client.get("/"))
        assert "failing for 2 days" in page
        assert page.count("failing for") == 1  # nothing to say for one never seen working

    def test_a_line_marks_where_the_healthy_rows_start(self, viewer_client):
        ConnectionFactory(name="x-failing", health="failing")
        ConnectionFactory(name="y-ok", health="ok")
        html = viewer_client.get("/").content.decode()
        assert re.search(r'<tr id="overview-y-ok" class="[^"]*triage-break', html)
        assert not re.search(r'<tr id="overview-x-failing" class="[^"]*triage-break', html)


class TestHeadroomLine:
    def test_vendor_headers_read_used_of_limit_per_window_with_thousands(self, viewer_client):
        ConnectionFactory(name="clever-busy", rl_limit=1200, rl_remaining=1, rl_reset_at=timezone.now() + timedelta(seconds=30),
                  rl_observed_at=timezone.now())
        page = text(viewer_client.get("/"))
        assert "1,199 / 1,200 per min" in page
        assert "left" not in page.split("clever-busy", 1)[1].split("Test")[0]  # one line on the overview

    def test_declared_limit_reads_the_same_way(self, viewer_client, settings, monkeypatch):
        settings.CLEVERBRIDGE_RATE_LIMIT = 150
        bridge = ConnectionFactory(name="bridge", provider="cleverbridge")
        frozen = timezone.now()  # the last second's count must not depend on how fast this machine is
        RequestLog.objects.bulk_create([RequestLogFactory.build(connection=bridge,
                                                                started_at=frozen - timedelta(milliseconds=200))
                                        for _ in range(137)])
        overview_module = importlib.import_module("connections.selectors.overview")
        monkeypatch.setattr(overview_module, "timezone", SimpleNamespace(now=lambda: frozen))
        page = text(viewer_client.get("/"))
        assert "137 / 150 per s" in page


class TestAlertsFiringNow:
    def test_firing_now_apart_from_the_history(self, viewer_client):
        now = timezone.now()
        down = ConnectionFactory(name="shop-eu")
        fine = ConnectionFactory(name="crm-us")
        AlertState.objects.create(connection=down, condition="failing", active=True,
                                  since=now - timedelta(minutes=12), detail="HTTP 502 from the vendor")
        AlertState.objects.create(connection=fine, condition="rate_limited", active=False, since=now)
        AlertEvent.objects.create(connection=fine, condition="rate_limited", transition="end",
                                  message="Resolved: crm-us is back to normal", at=now - timedelta(minutes=1))
        html = viewer_client.get("/alerts/").content.decode()
        firing = html.split('data-testid="firing-now"', 1)[1].split("</section>", 1)[0]
        assert "shop-eu" in firing and "Connection failing" in firing and "for 12 min" in firing
        assert "HTTP 502 from the vendor" in firing
        assert "crm-us" not in firing  # ended: history only
        history = html.split("<h2>History</h2>", 1)[1]
        assert "Resolved: crm-us is back to normal" in history
        assert html.index('data-testid="firing-now"') < html.index("<h2>History</h2>")

    def test_silenced_by_maintenance_says_so(self, viewer_client):
        now = timezone.now()
        c = ConnectionFactory(name="quiet-one")
        AlertState.objects.create(connection=c, condition="needs_attention", active=True, since=now)
        MaintenanceWindow.objects.create(connection=c, starts_at=now - timedelta(minutes=1),
                                         ends_at=now + timedelta(hours=1))
        firing = viewer_client.get("/alerts/").content.decode().split('data-testid="firing-now"', 1)[1]
        assert "silenced: maintenance" in firing.split("</section>", 1)[0]

    def test_nothing_firing(self, viewer_client):
        ConnectionFactory(name="calm")
        assert "Nothing is firing" in text(viewer_client.get("/alerts/"))
