"""/metrics in one process: the bearer token, and that requests, 429s, latency, rotations, health and
rate-limit headroom show up per connection and vendor after real calls to the sandbox twins.
(tests/system/test_metrics.py scrapes the real process tree, where web and worker are summed.)"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from connections.models import RequestLog
from connections.services.audit import Actor
from connections.services.testing import connection_test
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db]
TOKEN = "metrics-token-for-tests-0123456789"
SECRET = "metrics-secret-never-shown-42"


def scrape(token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client().get("/metrics", headers=headers)


def value(text: str, name: str, **labels) -> float:
    """The sample of `name` whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class TestToken:
    def test_no_token_setting_no_endpoint(self, settings):
        settings.METRICS_TOKEN = ""
        assert scrape().status_code == 404

    def test_missing_or_wrong_token_is_refused(self, settings):
        settings.METRICS_TOKEN = TOKEN
        assert scrape(None).status_code == 401
        refused = scrape("wrong-token-wrong-token-wrong")
        assert refused.status_code == 401 and b"switchboard_" not in refused.content
        assert scrape().status_code == 200


class TestCounts:
    def test_requests_429s_latency_health_and_headroom(self, settings, vendors):
        settings.METRICS_TOKEN = TOKEN
        conn = factories.connection("clever", sandbox=vendors)
        labels = {"connection": conn.name, "vendor": "clever"}
        before = scrape().content.decode()
        assert connection_test(connection=conn, actor=Actor(label="t", via="user")).ok
        vendors.set_fault("clever", "429_no_headers", count=1)
        connection_test(connection=conn, actor=Actor(label="t", via="user"))
        response = scrape()
        assert response["Content-Type"].startswith("text/plain")
        text = response.content.decode()

        def delta(name, **extra):
            return value(text, name, **labels, **extra) - value(before, name, **labels, **extra)

        rows = RequestLog.objects.filter(connection=conn)
        assert rows.filter(status_code=429).count() == 1  # then retried: the count matches the log rows
        assert delta("switchboard_vendor_requests_total", outcome="ok", status_class="2xx") == \
            rows.filter(outcome="ok").count() >= 2
        assert delta("switchboard_vendor_requests_total", status_class="4xx") == 1
        assert delta("switchboard_vendor_429_total") == 1
        assert delta("switchboard_vendor_requests_total") == rows.count()
        assert delta("switchboard_vendor_request_duration_seconds_count") == rows.count()
        conn.refresh_from_db()
        assert value(text, "switchboard_connection_health", **labels, state=conn.health) == 1
        assert value(text, "switchboard_connection_health", **labels) == 1  # one state at a time
        assert f'switchboard_rate_limit_remaining{{connection="{conn.name}",vendor="clever"}}' in text

    def test_rotations_by_outcome(self, settings, vendors):
        from connections.rotation import rotate

        settings.METRICS_TOKEN = TOKEN
        conn = factories.connection("cleanlist", sandbox=vendors)
        before = scrape().content.decode()
        rotate(connection=conn, actor=Actor(label="t", via="user"))
        text = scrape().content.decode()
        name = "switchboard_rotations_total"
        labels = {"connection": conn.name, "vendor": "cleanlist", "outcome": "succeeded"}
        assert value(text, name, **labels) - value(before, name, **labels) == 1

    def test_alert_deliveries_by_state(self, settings, mailoutbox):
        from connections.models import AlertChannel, AlertDelivery, AlertEvent
        from connections.tasks import deliver_alert

        settings.METRICS_TOKEN = TOKEN
        conn = factories.connection("clever", name="alerting", secret={"token": "t" * 20})
        channel = AlertChannel.objects.create(name="ops", kind="email", config={"to": ["ops@example.com"]},
                                              display_target="ops@example.com")
        event = AlertEvent.objects.create(connection=conn, condition="failing", transition="begin", message="down")
        delivery = AlertDelivery.objects.create(event=event, channel=channel, subject="s", body="b")
        before = scrape().content.decode()
        deliver_alert.apply(args=[delivery.pk])
        text = scrape().content.decode()
        labels = {"connection": "alerting", "vendor": "clever", "channel_kind": "email", "state": "sent"}
        name = "switchboard_alert_deliveries_total"
        assert len(mailoutbox) == 1
        assert value(text, name, **labels) - value(before, name, **labels) == 1

    def test_no_secret_in_the_output(self, settings, vendors):
        settings.METRICS_TOKEN = TOKEN
        factories.connection("clever", name="secretive", secret={"token": SECRET}, base_url=vendors.base_url("clever"))
        text = scrape().content.decode()
        assert "secretive" in text and SECRET not in text


def test_the_grafana_dashboard_and_alert_rules_use_metrics_that_exist(settings, db):
    """docs/grafana-dashboard.json and docs/prometheus-alerts.yml: every switchboard_* name they query
    is one /metrics declares (a renamed metric would leave them empty)."""
    from pathlib import Path

    settings.METRICS_TOKEN = TOKEN
    factories.connection("clever", secret={"token": "t" * 20})  # the gauges need a connection
    declared = {re.sub(r"_total$", "", n) for n in re.findall(r"^# TYPE (switchboard_\w+) ", scrape().content.decode(), re.M)}
    docs = Path(__file__).resolve().parents[2] / "docs"
    for name in ("grafana-dashboard.json", "prometheus-alerts.yml"):
        used = {re.sub(r"_(total|bucket|count|sum)$", "", n)
                for n in re.findall(r"switchboard_[a-z0-9_]+", (docs / name).read_text())}
        used.discard("switchboard_")  # the alert group's name prefix, not a metric
        assert used and used <= declared, f"{name} queries {sorted(used - declared)}, not declared by /metrics"
