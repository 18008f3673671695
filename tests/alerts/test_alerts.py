"""Alerts: one when a problem begins, one when it ends; cooldowns, maintenance, channels, retries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from connections import alerts
from connections.models import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertRule,
    Connection,
    Health,
    RotationAttempt,
)
from connections.services.audit import Actor
from dashboard.celery import app as celery_app
from tests import factories
from tests.factories import RequestLogFactory
from tests.receivers import SMTPSink, WebhookReceiver

pytestmark = [pytest.mark.services, pytest.mark.django_db]
ADMIN = Actor(label="admin-test")


@pytest.fixture(autouse=True)
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def run_commits(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (the delivery tasks) as the code commits."""
    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)
    return run


@pytest.fixture
def email_channel(db):
    return alerts.channel_create(name="ops-mail", kind="email", target="ops@example.com, oncall@example.com",
                                 actor=ADMIN)


def set_health(c: Connection, health: str, reason: str = ""):
    Connection.objects.filter(pk=c.pk).update(health=health, health_reason=reason)


class TestTransitions:
    def test_one_alert_when_failing_begins_and_one_when_it_ends(self, email_channel, run_commits):
        c = factories.connection("clever", secret={"token": "t-alert-1"})
        set_health(c, Health.FAILING, "HTTP 500 from the vendor")
        run_commits(alerts.evaluate)
        run_commits(alerts.evaluate)  # still failing: no storm
        assert len(mail.outbox) == 1
        assert "failing" in mail.outbox[0].subject.lower() and c.name in mail.outbox[0].subject
        assert "HTTP 500 from the vendor" in mail.outbox[0].body
        assert sorted(mail.outbox[0].to) == ["oncall@example.com", "ops@example.com"]
        set_health(c, Health.OK)
        run_commits(alerts.evaluate)
        run_commits(alerts.evaluate)
        assert len(mail.outbox) == 2
        assert mail.outbox[1].subject.startswith("[Switchboard] Resolved")
        assert list(AlertEvent.objects.order_by("at").values_list("transition", flat=True)) == ["begin", "end"]
        assert AlertDelivery.objects.filter(state="sent").count() == 2

    def test_maintenance_window_silences(self, email_channel, run_commits):
        c = factories.connection("clever", secret={"token": "t-alert-2"})
        now = timezone.now()
        alerts.maintenance_create(connection=c, starts_at=now - dt.timedelta(minutes=1),
                                  ends_at=now + dt.timedelta(hours=1), reason="vendor upgrade", actor=ADMIN)
        set_health(c, Health.FAILING)
        run_commits(alerts.evaluate)
        assert mail.outbox == []
        event = AlertEvent.objects.get()
        assert event.suppressed == "maintenance window"
        set_health(c, Health.OK)
        run_commits(alerts.evaluate)
        assert mail.outbox == []  # its start was never notified, so neither is its end

    def test_cooldown_stops_flapping(self, email_channel, run_commits):
        c = factories.connection("clever", secret={"token": "t-alert-3"})
        for health in (Health.FAILING, Health.OK, Health.FAILING):
            set_health(c, health)
            run_commits(alerts.evaluate)
        assert len(mail.outbox) == 2  # begin, end; the second begin falls in the 30-minute cooldown
        assert AlertEvent.objects.order_by("-at", "-id").first().suppressed.startswith("cooldown")

    def test_disabled_rule_and_per_connection_override(self, email_channel, run_commits):
        quiet = factories.connection("clever", name="quiet", secret={"token": "t-alert-4"})
        loud = factories.connection("clever", name="loud", secret={"token": "t-alert-5"})
        alerts.rule_set(connection=quiet, condition="failing", enabled=False, threshold=None, cooldown_minutes=30,
                        actor=ADMIN)
        set_health(quiet, Health.FAILING)
        set_health(loud, Health.FAILING)
        run_commits(alerts.evaluate)
        assert [m.subject for m in mail.outbox] == ["[Switchboard] loud: Connection failing"]

    def test_other_conditions(self, email_channel, run_commits):
        c = factories.connection("clever", secret={"token": "t-alert-6"})
        now = timezone.now()
        Connection.objects.filter(pk=c.pk).update(rl_limit=1200, rl_remaining=60, rl_reset_at=now + dt.timedelta(seconds=30))
        RequestLogFactory(connection=c, status_code=429, outcome="throttled", ago=dt.timedelta(0))
        RotationAttempt.objects.create(connection=c, state="outcome_unknown", vendor_request_id="req-42",
                                       error="response lost", finished_at=now)
        run_commits(alerts.evaluate)
        conditions = set(AlertEvent.objects.values_list("condition", flat=True))
        assert conditions == {"headroom_low", "rate_limited", "rotation_failed"}
        assert "req-42" in AlertEvent.objects.get(condition="rotation_failed").message
        assert "60 of 1200" in AlertEvent.objects.get(condition="headroom_low").message


class TestChannels:
    def test_webhook_is_slack_compatible_and_url_stays_secret(self, client, admin_user, run_commits):
        with WebhookReceiver() as hook:
            client.force_login(admin_user)
            response = client.post("/alerts/channels/new/", {"name": "slack", "kind": "webhook", "target": hook.url})
            assert response.status_code == 302
            channel = AlertChannel.objects.get(name="slack")
            page = client.get("/alerts/").content.decode()
            assert "secret-webhook-path" not in page and "127.0.0.1" in page
            run_commits(client.post, f"/alerts/channels/{channel.pk}/test/")
            assert len(hook.received) == 1 and "Test alert" in hook.received[0]["text"]
            c = factories.connection("cleanlist", secret={"token": "t-alert-7"})
            set_health(c, Health.NEEDS_ATTENTION, "refresh answer lost; ask Cleanlist support")
            run_commits(alerts.evaluate)
            payload = hook.received[-1]
            assert payload["connection"] == c.name and payload["transition"] == "begin"
            assert "ask Cleanlist support" in payload["text"]

    def test_failed_send_is_retried_then_visible(self, client, admin_user, run_commits):
        with WebhookReceiver() as hook:
            hook.fail_with = 503
            channel = alerts.channel_create(name="broken-hook", kind="webhook", target=hook.url, actor=ADMIN)
            c = factories.connection("clever", secret={"token": "t-alert-8"})
            set_health(c, Health.FAILING)
            run_commits(alerts.evaluate)
            delivery = AlertDelivery.objects.get(channel=channel)
            assert delivery.state == "failed" and delivery.attempts == 5
            assert "HTTP 503" in delivery.last_error and "secret-webhook-path" not in delivery.last_error
            client.force_login(admin_user)
            page = client.get("/alerts/").content.decode()
            assert "broken-hook: failed after 5 tries" in page

    def test_bad_channel_input(self, client, admin_user):
        client.force_login(admin_user)
        for data in ({"name": "x", "kind": "email", "target": "not-an-address"},
                     {"name": "y", "kind": "webhook", "target": "ftp://example.com"}):
            response = client.post("/alerts/channels/new/", data, follow=True)
            assert "was not added" in response.content.decode()
        assert not AlertChannel.objects.exists()

    def test_viewer_cannot_configure(self, viewer_client):
        page = viewer_client.get("/alerts/")
        assert page.status_code == 200
        html = page.content.decode()
        assert "No alerts yet" in html and "No channels" in html and "Add a channel" not in html
        assert viewer_client.post("/alerts/channels/new/", {"name": "x", "kind": "email",
                                                           "target": "a@example.com"}).status_code == 403
        assert not AlertChannel.objects.exists()

    def test_default_rules_exist_for_every_condition(self):
        assert set(AlertRule.objects.filter(connection=None).values_list("condition", flat=True)) == {
            "failing", "needs_attention", "rotation_failed", "headroom_low", "rate_limited", "credential_expiring"}


def test_real_smtp_server_receives_alert(run_commits):
    """End to end over SMTP: a real aiosmtpd server on loopback gets the alert and its recovery."""
    with SMTPSink() as smtp:
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                               EMAIL_HOST="127.0.0.1", EMAIL_PORT=smtp.port, EMAIL_USE_TLS=False):
            alerts.channel_create(name="smtp", kind="email", target="ops@example.com", actor=ADMIN)
            c = factories.connection("clever", secret={"token": "t-alert-9"})
            set_health(c, Health.FAILING, "HTTP 502 from a proxy")
            run_commits(alerts.evaluate)
            set_health(c, Health.OK)
            run_commits(alerts.evaluate)
    assert len(smtp.messages) == 2
    assert smtp.messages[0]["to"] == ["ops@example.com"]
    assert "HTTP 502 from a proxy" in smtp.messages[0]["data"]
    assert "Resolved" in smtp.messages[1]["data"]


@pytest.mark.django_db(transaction=True)
def test_breaking_a_sandbox_vendor_yields_one_alert_and_one_recovery(vendors, monkeypatch):
    """Real HTTP to the sandbox, a real webhook receiver: scheduled tests fail, then recover."""
    from connections.outbound import client
    from connections.services.testing import connection_test

    monkeypatch.setattr(client, "_sleep", lambda seconds: None)  # the retries' backoff, not their count

    with WebhookReceiver() as hook:
        alerts.channel_create(name="hook", kind="webhook", target=hook.url, actor=ADMIN)
        c = factories.connection("teletracker", name="tt-alerting", sandbox=vendors)
        schedule = Actor.schedule()

        def tick():
            connection_test(connection=Connection.objects.get(pk=c.pk), actor=schedule)
            alerts.evaluate()

        tick()
        assert hook.received == []
        vendors.set_fault("teletracker", "http500_empty")
        for _ in range(3):
            tick()
        assert len(hook.received) == 1
        assert hook.received[0]["transition"] == "begin" and "HTTP 500" in hook.received[0]["text"]
        vendors.clear_faults("teletracker")
        for _ in range(3):
            tick()
        assert [p["transition"] for p in hook.received] == ["begin", "end"]
        assert "Resolved" in hook.received[1]["text"]


def test_overview_shows_a_maintenance_window(viewer_client):
    c = factories.connection("clever", name="in-maintenance", secret={"token": "t-alert-10"})
    now = timezone.now()
    alerts.maintenance_create(connection=c, starts_at=now, ends_at=now + dt.timedelta(hours=2),
                              reason="vendor upgrade", actor=ADMIN)
    html = viewer_client.get("/").content.decode()
    row = html.split('id="overview-in-maintenance"')[1].split("</tr>")[0]
    assert "alerts silenced until" in row and "vendor upgrade" in row


def _rules_form(html: str, action: str) -> dict:
    """The fields of the rules form (a formset) as the browser would post them, unchanged."""
    from html.parser import HTMLParser

    form_html = html.split(f'action="{action}"', 1)[1].split("</form>", 1)[0]
    data: dict[str, str] = {}

    class Fields(HTMLParser):
        select = None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "input" and a.get("name") and a["name"] != "csrfmiddlewaretoken":
                if a.get("type") != "checkbox" or "checked" in a:
                    data[a["name"]] = a.get("value") or ("on" if a.get("type") == "checkbox" else "")
            elif tag == "select":
                self.select = a["name"]
            elif tag == "option" and self.select and "selected" in a:
                data[self.select] = a["value"]

    Fields().feed(form_html)
    return data


class TestRulesForm:
    """The rules are a formset: every condition saved together, or nothing when a value is bad."""

    def _field(self, data: dict, condition: str, name: str) -> str:
        prefix = next(k[: -len("-condition")] for k, v in data.items() if k.endswith("-condition") and v == condition)
        return f"{prefix}-{name}"

    def test_default_rules_saved_from_the_page(self, client, admin_user):
        client.force_login(admin_user)
        data = _rules_form(client.get("/alerts/").content.decode(), "/alerts/rules/")
        assert data["rules-TOTAL_FORMS"] == "6"
        data[self._field(data, "headroom_low", "threshold")] = "12.5"
        data[self._field(data, "rate_limited", "cooldown_minutes")] = "90"
        data.pop(self._field(data, "failing", "enabled"), None)  # unticked
        page = client.post("/alerts/rules/", data, follow=True).content.decode()
        assert "Default alert rules saved." in page
        rules = {r.condition: r for r in AlertRule.objects.filter(connection=None)}
        assert rules["headroom_low"].threshold == 12.5 and rules["rate_limited"].cooldown_minutes == 90
        assert not rules["failing"].enabled and rules["needs_attention"].enabled

    def test_a_bad_value_is_named_and_nothing_changes(self, client, admin_user):
        client.force_login(admin_user)
        before = list(AlertRule.objects.values_list("condition", "enabled", "threshold", "cooldown_minutes"))
        data = _rules_form(client.get("/alerts/").content.decode(), "/alerts/rules/")
        data[self._field(data, "headroom_low", "threshold")] = "-5"
        data[self._field(data, "rate_limited", "cooldown_minutes")] = "soon"
        data.pop(self._field(data, "failing", "enabled"), None)
        response = client.post("/alerts/rules/", data, follow=True)
        page = response.content.decode()
        assert response.status_code == 200 and "Alert rules not saved" in page
        assert "Rate-limit headroom low" in page and "Rate limited (429)" in page
        assert list(AlertRule.objects.values_list("condition", "enabled", "threshold", "cooldown_minutes")) == before
        tampered = {**data, "rules-TOTAL_FORMS": "x"}
        assert client.post("/alerts/rules/", tampered, follow=True).status_code == 200

    def test_a_connection_overrides_one_rule_then_follows_the_default_again(self, client, admin_user):
        client.force_login(admin_user)
        c = factories.connection("clever", secret={"token": "t-rules-1"})
        action = f"/connections/{c.name}/alerts/rules/"
        data = _rules_form(client.get(f"/connections/{c.name}/").content.decode(), action)
        assert data[self._field(data, "failing", "mode")] == "default"
        data[self._field(data, "failing", "mode")] = "own"
        data[self._field(data, "failing", "cooldown_minutes")] = "5"
        assert f"Alert rules of {c.name} saved." in client.post(action, data, follow=True).content.decode()
        own = AlertRule.objects.get(connection=c)
        assert own.condition == "failing" and own.cooldown_minutes == 5
        data = _rules_form(client.get(f"/connections/{c.name}/").content.decode(), action)
        assert data[self._field(data, "failing", "mode")] == "own"
        data[self._field(data, "failing", "mode")] = "default"
        client.post(action, data)
        assert not AlertRule.objects.filter(connection=c).exists()
