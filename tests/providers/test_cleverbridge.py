"""Cleverbridge over real HTTP against its sandbox twin (shared/VENDORS.md, "Cleverbridge")."""

from __future__ import annotations

import base64

import pytest

from connections.models import Outcome
from connections.outbound.client import RequestSpec, send
from connections.providers import get_provider
from connections.sandbox import DEMO_CREDENTIALS
from tests import factories
from tests.providers.helpers import USER, WORKER, rows, run_test

pytestmark = [pytest.mark.services, pytest.mark.django_db]
DEMO = DEMO_CREDENTIALS["cleverbridge"]


def make(vendors, **kwargs):
    return factories.connection("cleverbridge", sandbox=vendors, **kwargs)


class TestConnectionTest:
    def test_success_sends_basic_auth_and_accept(self, vendors):
        result = run_test(make(vendors))
        assert result.ok and result.status_code == 200 and result.outcome == Outcome.OK
        (row,) = rows(result)
        assert row.operation == "test" and row.path.endswith("/cleverbridge/connection/test")
        assert "Accept: application/json" in row.request_excerpt
        assert "Authorization: [REDACTED]" in row.request_excerpt
        assert vendors.stats("cleverbridge")["by_status"] == {200: 1}

    def test_xml_format_is_asked_for_and_parsed(self, vendors):
        connection = make(vendors, options={"accept_format": "xml"})
        result = run_test(connection)
        assert result.ok, result.error_message
        assert result.content_type.startswith("application/xml")
        assert "Accept: application/xml" in rows(result)[0].request_excerpt

    def test_wrong_password_is_401_and_never_retried(self, vendors, sleeps):
        connection = make(vendors, secret={"username": DEMO["username"], "password": "wrong-password-1"})
        result = run_test(connection, actor=WORKER)
        assert not result.ok and result.status_code == 401 and result.auth_failed
        assert result.error_message == "Authentication failed."
        assert result.attempts == 1 and sleeps == []
        assert vendors.stats("cleverbridge")["requests"] == 1
        assert vendors.stats("cleverbridge")["failed_logins"] == {DEMO["username"]: 1}


class TestErrors:
    def test_404_result_message(self, vendors):
        result = send(make(vendors), RequestSpec("GET", "/subscription/getsubscription",
                                                 params={"SubscriptionId": "S000"}), actor=USER)
        assert result.status_code == 404 and result.error_code == "not_found"
        assert result.error_message == "Item not found."
        assert result.error_details["ResultMessage"] == "Item not found."

    def test_400_missing_field_and_post_content_type(self, vendors):
        result = send(make(vendors), RequestSpec("POST", "/urlgenerator/generateusersessionurl", json={}),
                      actor=USER)
        assert result.status_code == 400 and result.error_code == "bad_request"
        assert result.error_message == "SubscriptionId is required."
        assert "Content-Type: application/json" in rows(result)[0].request_excerpt

    def test_402_invalid_parameters(self, vendors):
        result = send(make(vendors), RequestSpec("POST", "/urlgenerator/generateusersessionurl",
                                                 json={"SubscriptionId": "S94817263", "TargetPage": "Nope"}),
                      actor=USER)
        assert result.status_code == 402 and result.error_code == "invalid_parameters"
        assert "TargetPage" in result.error_message

    def test_post_success(self, vendors):
        result = send(make(vendors), RequestSpec("POST", "/urlgenerator/generateusersessionurl",
                                                 json={"SubscriptionId": "S94817263"}), actor=USER)
        assert result.ok and result.data["Url"].startswith("https://")

    def test_5xx_is_retried_a_few_times(self, vendors, sleeps):
        vendors.set_fault("cleverbridge", "http500_empty")
        result = run_test(make(vendors), actor=WORKER)
        assert result.status_code == 500 and result.attempts == 3 and len(sleeps) == 2
        assert result.error_message == "HTTP 500 with an empty body"
        assert [r.attempt for r in rows(result)] == [1, 2, 3]
        assert len({r.chain_id for r in rows(result)}) == 1

    def test_html_502_message_from_the_page(self, vendors, sleeps):
        vendors.set_fault("cleverbridge", "html502", count=1)
        result = run_test(make(vendors), actor=WORKER)
        assert result.ok and result.attempts == 2
        first = rows(result)[0]
        assert first.status_code == 502 and first.error_message == "HTML page: 502 Bad Gateway"
        assert first.response_content_type.startswith("text/html")

    def test_xml_when_json_was_asked(self, vendors):
        vendors.set_fault("cleverbridge", "xml_instead_of_json", count=1)
        result = run_test(make(vendors))
        assert not result.ok and result.outcome == Outcome.HTTP_ERROR
        assert result.error_code == "unexpected_content_type"
        assert "expected application/json" in result.error_message


class TestRateLimit:
    def test_429_retry_after_60_blocks_instead_of_sleeping(self, vendors, sleeps, tune):
        tune("cleverbridge", rate_limit_per_second=2)
        connection = make(vendors)
        results = [send(connection, RequestSpec("GET", "/connection/test"), actor=USER) for _ in range(3)]
        limited = results[-1]
        assert limited.status_code == 429 and limited.outcome == Outcome.THROTTLED
        assert limited.retry_after == 60 and sleeps == []
        assert limited.blocked_until is not None
        connection.refresh_from_db()
        assert connection.blocked_until is not None
        # Another Cleverbridge connection shares the egress IP's block: nothing is sent.
        before = vendors.stats("cleverbridge")["requests"]
        other = send(make(vendors), RequestSpec("GET", "/connection/test"), actor=USER)
        assert other.outcome == Outcome.THROTTLED and other.status_code is None and other.attempts == 0
        assert vendors.stats("cleverbridge")["requests"] == before

    def test_scope_is_the_egress_ip_for_every_connection(self):
        provider = get_provider("cleverbridge")
        a = provider.throttle_plan(connection_id=1, fingerprint="aaa")
        b = provider.throttle_plan(connection_id=2, fingerprint="bbb")
        assert a == b
        assert {r.kind: r.limit for r in a.rules} == {"concurrency": 4, "pace": 150}


def test_basic_token_is_user_colon_password():
    from connections.providers.http import basic_token

    assert basic_token("a", "b") == base64.b64encode(b"a:b").decode()
