"""Connection tests: the service (health, pause), the Test button (htmx), the CLI verbs, the tasks."""

from __future__ import annotations

import pytest
from django.utils.timezone import now

from connections.models import AuditEvent, Connection, Health, RequestLog
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from connections.services.testing import (
    CallError,
    connection_call,
    connection_resume_tests,
    connection_scheduled_test,
    connection_test,
)
from connections.services.vault import secret_replace
from tests import factories
from tests.cli import run_cli

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
USER = Actor(label="tester", via="user")
HX = {"HX-Request": "true"}


def bad_cleverbridge(vendors):
    return factories.connection("cleverbridge", sandbox=vendors,
                                secret={"username": DEMO_CREDENTIALS["cleverbridge"]["username"],
                                        "password": "wrong-password-7"})


class TestService:
    def test_ok_records_health_and_result(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        result = connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert result.ok and connection.health == Health.OK and connection.health_reason == ""
        assert connection.last_test_at and connection.last_ok_at
        r = connection.last_test_result
        assert r["ok"] is True and r["status_code"] == 200 and r["error"] is None
        assert isinstance(r["duration_ms"], int) and "districts" in r["proves"]
        event = AuditEvent.objects.get(action="connection.test", connection=connection)
        assert event.details["ok"] is True and event.actor_label == "tester"

    def test_failure_is_failing_with_the_parsed_error(self, vendors):
        connection = factories.connection("cleverbridge", sandbox=vendors)
        vendors.set_fault("cleverbridge", "xml_instead_of_json", count=1)
        connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert connection.health == Health.FAILING
        assert "unexpected_content_type" in connection.health_reason
        assert connection.last_test_result["error"]["code"] == "unexpected_content_type"

    def test_slow_is_degraded(self, vendors, settings):
        settings.CONNECTION_TEST_SLOW_MS = 100
        connection = factories.connection("cleanlist", sandbox=vendors)
        vendors.set_fault("cleanlist", "slow", count=1, seconds=0.3)
        assert connection_test(connection=connection, actor=USER).ok
        connection.refresh_from_db()
        assert connection.health == Health.DEGRADED and connection.health_reason.startswith("Slow")

    def test_intermittent_is_degraded(self, vendors):
        connection = factories.connection("cloverdx", sandbox=vendors)
        vendors.set_fault("cloverdx", "malformed_json", count=2)  # the accessibility check and the GET
        connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert connection.health == Health.FAILING
        connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert connection.health == Health.DEGRADED and "Intermittent: 1 of the last 2" in connection.health_reason

    def test_suspended_cloverdx(self, vendors):
        connection = factories.connection("cloverdx", sandbox=vendors)
        vendors.set_fault("cloverdx", "suspended")
        connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert connection.health == Health.SUSPENDED and "suspended" in connection.health_reason

    def test_auth_failure_pauses_scheduled_tests_until_the_secret_changes(self, vendors):
        connection = bad_cleverbridge(vendors)
        connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert connection.tests_paused and "account lockout" in connection.paused_reason
        skipped = connection_scheduled_test(connection_id=connection.pk)
        assert not skipped.ran and skipped.reason.startswith("paused")
        assert vendors.stats("cleverbridge")["requests"] == 1  # the skipped test sent nothing
        secret_replace(connection=connection, secret=dict(DEMO_CREDENTIALS["cleverbridge"]), actor=USER)
        connection.refresh_from_db()
        assert not connection.tests_paused
        assert connection_scheduled_test(connection_id=connection.pk).ok

    def test_resume_tests(self, vendors):
        connection = bad_cleverbridge(vendors)
        connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        connection_resume_tests(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert not connection.tests_paused
        assert AuditEvent.objects.filter(action="connection.tests_resumed", connection=connection).exists()

    def test_scheduled_test_skips_disabled(self, vendors):
        connection = factories.connection("clever", sandbox=vendors, enabled=False)
        assert connection_scheduled_test(connection_id=connection.pk).reason == "disabled"
        assert not RequestLog.objects.filter(connection=connection).exists()

    def test_needs_attention_is_not_cleared_by_a_test(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        Connection.objects.filter(pk=connection.pk).update(health=Health.NEEDS_ATTENTION, health_changed_at=now(),
                                                           health_reason="rotation lost its answer")
        connection.refresh_from_db()
        connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert connection.health == Health.NEEDS_ATTENTION  # rotation owns it
        # A secret stored after the flag, and a passing test, clear it.
        secret_replace(connection=connection, secret=dict(DEMO_CREDENTIALS["clever"]), actor=USER)
        connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert connection.health == Health.OK


class TestCall:
    def test_repeat(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        results = connection_call(connection=connection, method="get", path="/v3.0/districts", actor=USER, repeat=3)
        assert [r.ok for r in results] == [True] * 3
        assert AuditEvent.objects.get(action="connection.call").details["repeat"] == 3

    def test_refresh_endpoint_is_refused(self, vendors):
        connection = factories.connection("cleanlist", sandbox=vendors)
        with pytest.raises(CallError, match="refresh"):
            connection_call(connection=connection, method="POST", path="/api/_refresh/", actor=USER)
        assert vendors.stats("cleanlist")["requests"] == 0

    def test_bad_input(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        for kwargs in ({"method": "TRACE", "path": "/x"}, {"method": "GET", "path": "https://evil.example/x"},
                       {"method": "GET", "path": "/x", "repeat": 0}):
            with pytest.raises(CallError):
                connection_call(connection=connection, actor=USER, **kwargs)


class TestButton:
    def test_htmx_fragment_shows_the_result(self, operator_client, vendors):
        connection = factories.connection("cleanlist", sandbox=vendors)
        response = operator_client.post(f"/connections/{connection.name}/test/", headers=HX)
        assert response.status_code == 200
        text = response.content.decode()
        assert "<html" not in text and ">ok<" in text and "HTTP 200" in text and " ms" in text
        assert "request id" in text and "pub_echo does not check the token" in text

    def test_htmx_fragment_shows_the_parsed_error_and_the_pause(self, operator_client, vendors):
        connection = bad_cleverbridge(vendors)
        response = operator_client.post(f"/connections/{connection.name}/test/", headers=HX)
        text = response.content.decode()
        assert "failed" in text and "HTTP 401" in text and "Authentication failed." in text
        assert "paused to avoid an account lockout" in text and "Resume scheduled tests" in text
        resumed = operator_client.post(f"/connections/{connection.name}/resume-tests/", headers=HX)
        assert "Scheduled tests resumed." in resumed.content.decode()

    def test_without_htmx_redirects_with_a_message(self, operator_client, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        response = operator_client.post(f"/connections/{connection.name}/test/", {"next": "list"}, follow=True)
        assert response.redirect_chain[-1][0] == "/connections/"
        assert "test passed" in response.content.decode()

    def test_viewer_may_not_test_and_sees_no_button(self, viewer_client, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        assert viewer_client.post(f"/connections/{connection.name}/test/", headers=HX).status_code == 403
        assert vendors.stats("clever")["requests"] == 0
        for url in ("/connections/", f"/connections/{connection.name}/"):
            assert f"/connections/{connection.name}/test/" not in viewer_client.get(url).content.decode()

    def test_pages_carry_the_panel(self, operator_client, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        connection_test(connection=connection, actor=USER)
        for url in ("/connections/", f"/connections/{connection.name}/"):
            text = operator_client.get(url).content.decode()
            assert f'hx-post="/connections/{connection.name}/test/"' in text
            assert "Testing…" in text and "hx-disabled-elt" in text and "HTTP 200" in text


class TestCLI:
    def test_test_json(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        out = run_cli("test", connection.name, "--json")
        assert out.code == 0, out.err
        data = out.json()
        assert data["ok"] is True and data["status_code"] == 200 and data["name"] == connection.name
        assert data["health"] == "ok" and data["error"] is None and "duration_ms" in data
        assert "vendor_request_id" in data

    def test_test_failure_exit_1(self, vendors):
        out = run_cli("test", bad_cleverbridge(vendors).name, "--json")
        assert out.code == 1 and out.json()["error"]["code"] == "unauthorized"

    def test_unknown_name_exit_2(self, vendors):
        assert run_cli("test", "nope").code == 2

    def test_call_with_data_and_repeat(self, vendors):
        connection = factories.connection("cleanlist", sandbox=vendors)
        out = run_cli("call", connection.name, "POST", "/pub_echo/", "--data", '{"hello": "world"}',
                      "--repeat", "2", "--json")
        assert out.code == 0, out.err
        data = out.json()
        assert data["count"] == 2 and data["ok_count"] == 2 and data["data"]["result"] == {"hello": "world"}

    def test_call_vendor_said_no_and_bad_json(self, vendors):
        connection = factories.connection("cleverbridge", sandbox=vendors)
        out = run_cli("call", connection.name, "GET", "/subscription/getsubscription",
                      "--data", '{"SubscriptionId": "S0"}')
        assert out.code == 1 and "Item not found." in out.out
        assert run_cli("call", connection.name, "GET", "/x", "--data", "{nope").code == 2


class TestTasks:
    def test_scheduled_test_task(self, vendors):
        from connections.tasks import scheduled_test

        connection = factories.connection("clever", sandbox=vendors)
        assert scheduled_test.apply(args=[connection.pk]).get()["ok"] is True
        row = RequestLog.objects.get(connection=connection)
        assert row.triggered_by == "schedule" and row.task_id

    def test_run_test_task(self, vendors):
        from connections.tasks import run_test

        connection = factories.connection("clever", sandbox=vendors)
        summary = run_test.apply(args=[connection.pk, "alice"]).get()
        assert summary["ok"] is True
        assert RequestLog.objects.get(connection=connection).actor_label == "alice"


def test_teletracker_error_shows_the_support_deadline(operator_client, vendors):
    connection = factories.connection("teletracker", sandbox=vendors,
                                      secret={**DEMO_CREDENTIALS["teletracker"], "account_id": "99999"})
    text = operator_client.post(f"/connections/{connection.name}/test/", headers=HX).content.decode()
    assert "HTTP 403" in text and "to the vendor's support by 20" in text


def test_limits_are_described():
    from connections.providers import get_provider

    assert "150 requests/s per egress IP" in get_provider("cleverbridge").describe_limits()
    assert "1200 requests per minute per bearer token" in get_provider("clever").describe_limits()
