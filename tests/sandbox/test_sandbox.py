"""The vendor twins over real HTTP on loopback (shared/VENDORS.md is the spec they follow).

Plain pytest: no Django, no database. Run alone with
    .venv/bin/python -m pytest -p no:django --noconftest tests/sandbox -q
"""

from __future__ import annotations

import base64
import threading
import time
from http.client import HTTPConnection

import pytest
import requests

from connections.sandbox import (
    CLEVER_SSO_TOKEN,
    CLOVERDX_NO_MONITORING_CREDENTIALS,
    DEMO_CREDENTIALS,
    TELETRACKER_DEMO_ACCOUNTS,
    VENDOR_NAMES,
    SandboxServer,
)

T = 5  # seconds: every request has a timeout


@pytest.fixture(scope="module")
def server():
    with SandboxServer() as s:
        yield s


@pytest.fixture
def sb(server):
    """The sandbox reset to defaults; settings and clocks a test changed are restored after it."""
    saved = {name: server.vendor(name).current_settings() for name in VENDOR_NAMES}
    server.reset()
    yield server
    for name, values in saved.items():
        server.vendor(name).configure(**values)
        server.vendor(name).clock = time.time
    server.reset()


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def burst(n, fn):
    """Run fn(i) in n threads released together; return the results in order."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except requests.RequestException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    return results


# --------------------------------------------------------------------------- Cleverbridge

CB = DEMO_CREDENTIALS["cleverbridge"]
CB_AUTH = (CB["username"], CB["password"])
JSON = {"Accept": "application/json"}


class TestCleverbridge:
    def url(self, sb, path):
        return sb.base_url("cleverbridge") + path

    def test_connection_test_json_and_xml(self, sb, http):
        r = http.get(self.url(sb, "/connection/test"), auth=CB_AUTH, headers=JSON, timeout=T)
        assert r.status_code == 200
        assert r.json() == {"ResultMessage": ""}
        r = http.get(self.url(sb, "/connection/test"), auth=CB_AUTH, headers={"Accept": "application/xml"}, timeout=T)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("application/xml")
        assert b"<Result><ResultMessage /></Result>" in r.content

    @pytest.mark.parametrize("accept", [None, "*/*", "text/plain"])
    def test_accept_is_required(self, sb, http, accept):
        headers = {"Accept": accept} if accept else {}
        r = requests.get(self.url(sb, "/connection/test"), auth=CB_AUTH, headers=headers, timeout=T)
        assert r.status_code == 400
        assert "Accept" in r.json()["ResultMessage"]

    def test_wrong_password_then_lockout_after_three(self, sb, http):
        bad = (CB["username"], "wrong")
        for _ in range(3):
            r = http.get(self.url(sb, "/connection/test"), auth=bad, headers=JSON, timeout=T)
            assert r.status_code == 401
            assert r.json() == {"ResultMessage": "Authentication failed."}
        r = http.get(self.url(sb, "/connection/test"), auth=CB_AUTH, headers=JSON, timeout=T)
        assert r.status_code == 401, "locked: the right password no longer works"
        assert sb.stats("cleverbridge")["locked_users"] == [CB["username"]]
        sb.reset()
        assert http.get(self.url(sb, "/connection/test"), auth=CB_AUTH, headers=JSON, timeout=T).status_code == 200

    def test_failures_must_be_consecutive(self, sb, http):
        bad = (CB["username"], "wrong")
        for auth in (bad, bad, CB_AUTH, bad, bad, CB_AUTH):
            http.get(self.url(sb, "/connection/test"), auth=auth, headers=JSON, timeout=T)
        assert sb.stats("cleverbridge")["locked_users"] == []

    def test_xml_error(self, sb, http):
        r = http.get(self.url(sb, "/connection/test"), auth=("x", "y"), headers={"Accept": "application/xml"}, timeout=T)
        assert r.status_code == 401
        assert b"<ResultMessage>Authentication failed.</ResultMessage>" in r.content

    def test_get_subscription(self, sb, http):
        url = self.url(sb, "/subscription/getsubscription")
        r = http.get(url, params={"SubscriptionId": "S94817263"}, auth=CB_AUTH, headers=JSON, timeout=T)
        assert r.status_code == 200 and r.json()["Subscription"]["Status"] == "Active"
        r = http.get(url, params={"SubscriptionId": "S000"}, auth=CB_AUTH, headers=JSON, timeout=T)
        assert (r.status_code, r.json()) == (404, {"ResultMessage": "Item not found."})
        assert http.get(url, auth=CB_AUTH, headers=JSON, timeout=T).status_code == 400

    def test_generate_user_session_url(self, sb, http):
        url = self.url(sb, "/urlgenerator/generateusersessionurl")
        r = http.post(url, data=b'{"SubscriptionId": "S94817263"}', auth=CB_AUTH, headers=JSON, timeout=T)
        assert r.status_code == 400 and "Content-Type" in r.json()["ResultMessage"]
        r = http.post(url, json={"SubscriptionId": "S94817263", "TargetPage": "Nowhere"}, auth=CB_AUTH,
                      headers=JSON, timeout=T)
        assert r.status_code == 402 and r.json()["ResultMessage"].startswith("Invalid parameters")
        r = http.post(url, json={"TargetPage": "Invoices"}, auth=CB_AUTH, headers=JSON, timeout=T)
        assert r.status_code == 400
        r = http.post(url, json={"SubscriptionId": "S000"}, auth=CB_AUTH, headers=JSON, timeout=T)
        assert r.status_code == 404
        r = http.post(url, json={"SubscriptionId": "S94817263", "TargetPage": "Invoices"}, auth=CB_AUTH,
                      headers=JSON, timeout=T)
        assert r.status_code == 200 and r.json()["Url"].startswith("https://")
        r = http.post(url, data=b"<Request><SubscriptionId>S94817263</SubscriptionId></Request>", auth=CB_AUTH,
                      headers={"Accept": "application/xml", "Content-Type": "application/xml"}, timeout=T)
        assert r.status_code == 200 and b"<Url>https://" in r.content

    def test_rate_limit_429_html_retry_after_and_block(self, sb, http):
        sb.vendor("cleverbridge").configure(rate_limit_per_second=20, block_seconds=1)
        statuses = [http.get(self.url(sb, "/connection/test"), auth=CB_AUTH, headers=JSON, timeout=T)
                    for _ in range(25)]
        assert [r.status_code for r in statuses[:20]] == [200] * 20
        first = statuses[20]
        assert first.status_code == 429
        assert first.headers["Content-Type"].startswith("text/html")
        assert first.headers["Retry-After"] == "1"
        assert "<html>" in first.text
        assert all(r.status_code == 429 for r in statuses[21:]), "the IP stays blocked"
        stats = sb.stats("cleverbridge")
        assert stats["rate_limited"] == 5 and stats["max_per_second"] == 25
        assert "127.0.0.1" in stats["blocked_ips"]
        time.sleep(1.1)
        assert http.get(self.url(sb, "/connection/test"), auth=CB_AUTH, headers=JSON, timeout=T).status_code == 200

    def test_more_than_four_in_flight_is_a_violation(self, sb):
        sb.set_fault("cleverbridge", "slow", count=5, seconds=0.5)  # keeps five requests in flight at once

        def call(i):
            return requests.get(self.url(sb, "/connection/test"), auth=CB_AUTH, headers=JSON, timeout=T)

        codes = sorted(r.status_code for r in burst(5, call))
        assert codes == [200, 200, 200, 200, 429]
        stats = sb.stats("cleverbridge")
        assert stats["concurrency_violations"] == 1
        assert stats["max_in_flight"] == 5
        assert stats["blocked_ips"] == {}, "a concurrency violation refuses one request, it does not block"

    def test_max_in_flight_counts_every_client_and_starts_again_at_reset(self, sb, http):
        """What tests assert "at most 4 in flight at Cleverbridge" with: the most requests the twin
        held at once since reset, from any client address (here two, each within the per-IP rule)."""
        sb.set_fault("cleverbridge", "slow", count=4, seconds=0.5)
        auth = "Basic " + base64.b64encode(":".join(CB_AUTH).encode()).decode()

        def call(i):
            conn = HTTPConnection(sb.host, sb.port, timeout=T, source_address=(f"127.0.0.{1 + i % 2}", 0))
            try:
                conn.request("GET", "/cleverbridge/connection/test", headers={**JSON, "Authorization": auth})
                return conn.getresponse().status
            finally:
                conn.close()

        assert burst(4, call) == [200] * 4
        stats = http.get(sb.url + "/_sandbox/cleverbridge/stats", timeout=T).json()
        assert stats["max_in_flight"] == 4 and stats["concurrency_violations"] == 0
        http.post(sb.url + "/_sandbox/cleverbridge/reset", timeout=T)
        assert sb.stats("cleverbridge")["max_in_flight"] == 0


# --------------------------------------------------------------------------- Clever

CLEVER = {"Authorization": f"Bearer {DEMO_CREDENTIALS['clever']['token']}"}
SSO = {"Authorization": f"Bearer {CLEVER_SSO_TOKEN}"}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Bucket")


class TestClever:
    def url(self, sb, path):
        return sb.base_url("clever") + path

    def test_districts_with_district_token(self, sb, http):
        r = http.get(self.url(sb, "/v3.0/districts"), headers=CLEVER, timeout=T)
        assert r.status_code == 200
        body = r.json()
        assert body["data"][0]["data"]["name"] and body["data"][0]["data"]["id"]
        assert body["links"] == [{"rel": "self", "uri": "/v3.0/districts"}]
        assert r.headers["X-RateLimit-Limit"] == "1200"
        assert r.headers["X-RateLimit-Remaining"] == "1199"
        assert int(r.headers["X-RateLimit-Reset"]) % 60 == 0 and int(r.headers["X-RateLimit-Reset"]) > time.time()
        assert DEMO_CREDENTIALS["clever"]["token"] not in r.headers["X-RateLimit-Bucket"]
        r = http.get(self.url(sb, "/v3.1/districts"), headers=CLEVER, timeout=T)
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "1198"

    def test_me_for_both_token_kinds(self, sb, http):
        district = http.get(self.url(sb, "/v3.0/me"), headers=CLEVER, timeout=T).json()
        user = http.get(self.url(sb, "/v3.0/me"), headers=SSO, timeout=T).json()
        assert district["type"] == "district" and user["type"] == "user"
        assert user["data"]["district"] == district["data"]["id"]

    def test_sso_token_only_reaches_me_district_and_self(self, sb, http):
        me = http.get(self.url(sb, "/v3.0/me"), headers=SSO, timeout=T).json()["data"]
        r = http.get(self.url(sb, "/v3.0/districts"), headers=SSO, timeout=T)
        assert r.status_code == 404 and "message" in r.json()
        assert http.get(self.url(sb, f"/v3.0/districts/{me['district']}"), headers=SSO, timeout=T).status_code == 200
        assert http.get(self.url(sb, f"/v3.0/users/{me['id']}"), headers=SSO, timeout=T).status_code == 200
        assert http.get(self.url(sb, "/v3.0/users/dad21343733c4af22c18ba7e"), headers=SSO, timeout=T).status_code == 404
        assert http.get(self.url(sb, "/v3.0/users/dad21343733c4af22c18ba7e"), headers=CLEVER, timeout=T).status_code == 200

    def test_errors_carry_rate_headers(self, sb, http):
        r = http.get(self.url(sb, "/v3.0/districts"), headers={"Authorization": "Bearer nope"}, timeout=T)
        assert r.status_code == 401 and r.json()["message"]
        assert all(h in r.headers for h in RATE_HEADERS)
        r = http.get(self.url(sb, "/v3.0/nowhere"), headers=CLEVER, timeout=T)
        assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
        assert all(h in r.headers for h in RATE_HEADERS)
        r = http.get(self.url(sb, "/v3.0/users"), params={"limit": 10001}, headers=CLEVER, timeout=T)
        assert r.status_code == 413 and r.json()["message"]
        assert http.get(self.url(sb, "/v3.0/users"), params={"limit": 1}, headers=CLEVER, timeout=T).status_code == 200

    def test_fixed_window_per_token(self, sb, http):
        clever = sb.vendor("clever")
        clever.configure(limit_per_minute=5)
        now = [1_800_000_030.0]  # mid-window
        clever.clock = lambda: now[0]
        codes = [http.get(self.url(sb, "/v3.0/districts"), headers=CLEVER, timeout=T) for _ in range(6)]
        assert [r.status_code for r in codes] == [200] * 5 + [429]
        over = codes[-1]
        assert over.content == b"" and "Retry-After" not in over.headers
        assert over.headers["X-RateLimit-Remaining"] == "0"
        assert over.headers["X-RateLimit-Reset"] == "1800000060"
        assert http.get(self.url(sb, "/v3.0/me"), headers=SSO, timeout=T).status_code == 200, "per token"
        now[0] = 1_800_000_060.0  # the next window starts afresh
        r = http.get(self.url(sb, "/v3.0/districts"), headers=CLEVER, timeout=T)
        assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "4"
        stats = sb.stats("clever")
        assert stats["max_per_minute_by_token"] == 6 and stats["rate_limited"] == 1


# --------------------------------------------------------------------------- CloverDX

CDX = DEMO_CREDENTIALS["cloverdx"]
CDX_AUTH = (CDX["username"], CDX["password"])
XRB = {"X-Requested-By": "switchboard"}


class TestCloverDX:
    def url(self, sb, path):
        return sb.base_url("cloverdx") + path

    def test_accessibility_test_needs_no_auth(self, sb, http):
        r = http.get(self.url(sb, "/clover/accessibilityTest.jsp"), timeout=T)
        assert (r.status_code, r.text) == (200, "OK")
        assert r.headers["Content-Type"].startswith("text/plain")

    def test_executions_and_x_requested_by(self, sb, http):
        url = self.url(sb, "/clover/api/rest/v1/executions?pageSize=1")
        r = http.get(url, auth=CDX_AUTH, headers=XRB, timeout=T)
        assert r.status_code == 200 and isinstance(r.json(), list) and len(r.json()) == 1
        r = http.get(url, auth=CDX_AUTH, timeout=T)
        assert r.status_code == 400 and "X-Requested-By" in r.json()["message"]
        r = http.get(url, headers=XRB, timeout=T)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")

    def test_monitors_need_the_monitoring_permission(self, sb, http):
        url = self.url(sb, "/clover/api/rest/v1/monitors")
        assert http.get(url, auth=CDX_AUTH, headers=XRB, timeout=T).status_code == 200
        viewer = tuple(CLOVERDX_NO_MONITORING_CREDENTIALS.values())
        r = http.get(url, auth=viewer, headers=XRB, timeout=T)
        assert r.status_code == 403 and "Monitoring" in r.json()["message"]

    def test_lockout_after_five_failures_then_expiry(self, sb, http):
        sb.vendor("cloverdx").configure(lockout_seconds=0.4)
        url = self.url(sb, "/clover/api/rest/v1/executions?pageSize=1")
        for _ in range(5):
            assert http.get(url, auth=(CDX["username"], "wrong"), headers=XRB, timeout=T).status_code == 401
        assert http.get(url, auth=CDX_AUTH, headers=XRB, timeout=T).status_code == 401, "locked"
        assert sb.stats("cloverdx")["locked_users"] == [CDX["username"]]
        time.sleep(0.5)
        assert http.get(url, auth=CDX_AUTH, headers=XRB, timeout=T).status_code == 200

    def test_failures_outside_the_window_do_not_lock(self, sb, http):
        sb.vendor("cloverdx").configure(lockout_window_seconds=0.3)
        url = self.url(sb, "/clover/api/rest/v1/executions")
        for _ in range(4):
            http.get(url, auth=(CDX["username"], "wrong"), headers=XRB, timeout=T)
        time.sleep(0.35)
        http.get(url, auth=(CDX["username"], "wrong"), headers=XRB, timeout=T)
        assert http.get(url, auth=CDX_AUTH, headers=XRB, timeout=T).status_code == 200

    def test_suspended(self, sb, http):
        jsp = self.url(sb, "/clover/accessibilityTest.jsp")
        rest = self.url(sb, "/clover/api/rest/v1/executions")
        sb.set_fault("cloverdx", "suspended")
        r = http.get(jsp, timeout=T)
        assert (r.status_code, r.text) == (503, "SUSPENDED")
        assert http.get(rest, auth=CDX_AUTH, headers=XRB, timeout=T).status_code == 503
        sb.clear_faults("cloverdx")
        assert http.get(jsp, timeout=T).status_code == 200
        sb.vendor("cloverdx").suspended = True
        assert http.get(jsp, timeout=T).text == "SUSPENDED"
        with pytest.raises(ValueError):
            sb.set_fault("clever", "suspended")


# --------------------------------------------------------------------------- TeleTracker

TT = DEMO_CREDENTIALS["teletracker"]


def integrator(username, password):
    return {"Authorization": "Integrator " + base64.b64encode(f"{username}:{password}".encode()).decode()}


class TestTeleTracker:
    def url(self, sb, path):
        return sb.base_url("teletracker") + path

    def login(self, sb, http, **extra):
        r = http.post(self.url(sb, "/auth/login"), data={"username": TT["username"], "password": TT["password"],
                                                          "account_id": TT["account_id"], **extra}, timeout=T)
        assert r.status_code == 200, r.text
        return r.json()

    def test_login_returns_a_session(self, sb, http):
        body = self.login(sb, http)
        assert body["success"] is True and len(body["guid"]) == 36
        data = body["data"]
        assert {"token", "tokenExpiration", "tokenLifetime", "refreshToken", "refreshTokenExpiration"} <= set(data)
        assert data["tokenLifetime"] == 3600 and data["tokenExpiration"].endswith("Z")
        r = http.get(self.url(sb, "/reports/call-data"), params={"start": "2025-11-01", "end": "2025-11-02"},
                     headers={"Authorization": f"Bearer {data['token']}"}, timeout=T)
        assert r.status_code == 200 and r.json()["data"]["rows"]
        assert r.json()["data"]["account_id"] == TT["account_id"]

    def test_auth_only_creates_no_session(self, sb, http):
        r = http.post(self.url(sb, "/auth/login"), json={"username": TT["username"], "password": TT["password"],
                                                         "auth_only": 1}, timeout=T)
        assert r.status_code == 200 and r.json()["success"] is True and r.json()["data"] == {}
        assert sb.stats("teletracker")["live_sessions"] == 0
        assert sb.vendor("teletracker").sessions.live == {}

    def test_login_errors(self, sb, http):
        r = http.post(self.url(sb, "/auth/login"), data={"username": TT["username"]}, timeout=T)
        body = r.json()
        assert r.status_code == 400 and body["success"] is False and body["missingInputVars"] == ["password"]
        assert body["errorDetail"] and body["guid"]
        r = http.post(self.url(sb, "/auth/login"), data={"username": TT["username"], "password": "x"}, timeout=T)
        assert r.status_code == 401 and r.json()["success"] is False and r.json()["message"]
        r = http.post(self.url(sb, "/auth/login"), data=b"username=x", headers={"Content-Type": "text/plain"}, timeout=T)
        assert r.status_code == 415

    def test_missing_start(self, sb, http):
        token = self.login(sb, http)["data"]["token"]
        r = http.get(self.url(sb, "/reports/call-data"), headers={"Authorization": f"Bearer {token}"}, timeout=T)
        assert r.status_code == 400 and r.json()["missingInputVars"] == ["start"]

    def test_basic_without_account_id_runs_on_an_arbitrary_account(self, sb, http):
        auth = (TT["username"], TT["password"])
        url = self.url(sb, "/reports/call-data")
        r = http.get(url, params={"start": "2025-11-01"}, auth=auth, timeout=T)
        assert r.status_code == 200 and r.json()["data"]["account_id"] == TELETRACKER_DEMO_ACCOUNTS[0] != TT["account_id"]
        r = http.get(url, params={"start": "2025-11-01", "account_id": TT["account_id"]}, auth=auth, timeout=T)
        assert r.json()["data"]["account_id"] == TT["account_id"]
        r = http.get(url, params={"start": "2025-11-01", "account_id": "999"}, auth=auth, timeout=T)
        assert r.status_code == 403

    def test_integrator_needs_account_id(self, sb, http):
        url = self.url(sb, "/reports/call-data")
        headers = integrator(TT["username"], TT["password"])
        r = http.get(url, params={"start": "2025-11-01"}, headers=headers, timeout=T)
        assert r.status_code == 400 and r.json()["missingInputVars"] == ["account_id"]
        r = http.get(url, params={"start": "2025-11-01", "account_id": TT["account_id"]}, headers=headers, timeout=T)
        assert r.status_code == 200
        assert http.get(url, params={"start": "2025-11-01"}, timeout=T).status_code == 401

    def test_refresh_rotates_both_tokens(self, sb, http):
        first = self.login(sb, http)["data"]
        r = http.post(self.url(sb, "/auth/refresh"), data={"refresh_token": first["refreshToken"]}, timeout=T)
        assert r.status_code == 200
        second = r.json()["data"]
        assert second["token"] != first["token"] and second["refreshToken"] != first["refreshToken"]
        again = http.post(self.url(sb, "/auth/refresh"), data={"refresh_token": first["refreshToken"]}, timeout=T)
        assert again.status_code == 401 and again.json()["success"] is False
        call = self.url(sb, "/reports/call-data?start=2025-11-01")
        assert http.get(call, headers={"Authorization": f"Bearer {first['token']}"}, timeout=T).status_code == 401
        assert http.get(call, headers={"Authorization": f"Bearer {second['token']}"}, timeout=T).status_code == 200
        stats = sb.stats("teletracker")
        assert stats["rescinded_token_uses"] == 2
        assert [(c["token_was_current"], c["rotated"]) for c in stats["refresh_calls"]] == [(True, True), (False, False)]
        missing = http.post(self.url(sb, "/auth/refresh"), data={}, timeout=T)
        assert missing.status_code == 400 and missing.json()["missingInputVars"] == ["refresh_token"]

    def test_session_expiry_uses_token_lifetime(self, sb, http):
        tt = sb.vendor("teletracker")
        tt.configure(token_lifetime=60)
        token = self.login(sb, http)["data"]["token"]
        assert self.login(sb, http)["data"]["tokenLifetime"] == 60
        start = time.time()
        tt.clock = lambda: start + 61
        r = http.get(self.url(sb, "/reports/call-data?start=2025-11-01"), headers={"Authorization": f"Bearer {token}"},
                     timeout=T)
        assert r.status_code == 401 and "expired" in r.json()["message"]


# --------------------------------------------------------------------------- Cleanlist

CL_TOKEN = DEMO_CREDENTIALS["cleanlist"]["token"]


def token(value):
    return {"Authorization": f"Token {value}"}


class TestCleanlist:
    def url(self, sb, service):
        return sb.base_url("cleanlist") + f"/api/{service}/"

    def test_pub_echo_ignores_the_token(self, sb, http):
        for headers in ({}, token("not-a-token"), token(CL_TOKEN)):
            r = http.post(self.url(sb, "pub_echo"), json={"hello": "world"}, headers=headers, timeout=T)
            body = r.json()
            assert r.status_code == 200 and body["ok"] is True and body["result"] == {"hello": "world"}
            assert body["req_id"]

    def test_services_and_errors(self, sb, http):
        r = http.post(self.url(sb, "email_verify"), json={"email": "a@example.com"}, headers=token(CL_TOKEN), timeout=T)
        assert r.status_code == 200 and r.json()["result"]["status"] == "valid"
        for headers in ({}, token("bad")):
            r = http.post(self.url(sb, "email_verify"), json={"email": "a@example.com"}, headers=headers, timeout=T)
            assert r.status_code == 401 and r.json()["error"]["error_code"] == "invalid_token"
        r = http.post(self.url(sb, "phone_verify"), json={"phone": "+15550100"}, headers=token(CL_TOKEN), timeout=T)
        assert r.status_code == 403 and r.json()["ok"] is False
        r = http.post(self.url(sb, "no_such_service"), json={}, headers=token(CL_TOKEN), timeout=T)
        assert r.status_code == 404 and r.headers["Content-Type"] == "application/json" and r.json()["req_id"]
        r = http.get(self.url(sb, "pub_echo"), timeout=T)
        assert r.status_code == 405 and r.json()["ok"] is False
        r = http.post(self.url(sb, "pub_echo"), data=b"not json", timeout=T)
        assert r.status_code == 400 and r.json()["error"]["error_code"] == "invalid_json"

    def test_refresh_rescinds_the_old_token(self, sb, http):
        r = http.post(self.url(sb, "_refresh"), json={}, headers=token(CL_TOKEN), timeout=T)
        assert r.status_code == 200
        new = r.json()["result"]["new_token"]
        assert new != CL_TOKEN
        r = http.post(self.url(sb, "email_verify"), json={"email": "a@example.com"}, headers=token(CL_TOKEN), timeout=T)
        assert r.status_code == 401 and r.json()["error"]["error_code"] == "invalid_token"
        http.post(self.url(sb, "pub_echo"), json={}, headers=token(CL_TOKEN), timeout=T)  # still green: the trap
        assert http.post(self.url(sb, "_refresh"), json={}, headers=token(CL_TOKEN), timeout=T).status_code == 401
        r = http.post(self.url(sb, "email_verify"), json={"email": "a@example.com"}, headers=token(new), timeout=T)
        assert r.status_code == 200
        stats = sb.stats("cleanlist")
        assert stats["rescinded_token_uses"] == 3
        assert [(c["token_was_current"], c["rotated"]) for c in stats["refresh_calls"]] == [(True, True), (False, False)]

    def test_concurrent_refreshes_exactly_one_wins(self, sb):
        results = burst(8, lambda i: requests.post(self.url(sb, "_refresh"), json={}, headers=token(CL_TOKEN), timeout=T))
        codes = sorted(r.status_code for r in results)
        assert codes == [200] + [401] * 7
        calls = sb.stats("cleanlist")["refresh_calls"]
        assert len(calls) == 8 and sum(c["rotated"] for c in calls) == 1
        assert sb.stats("cleanlist")["live_tokens"] == 1


# --------------------------------------------------------------------------- faults


def cheap(sb):
    return sb.base_url("cloverdx") + "/clover/accessibilityTest.jsp"


class TestFaults:
    def test_http500_empty(self, sb, http):
        sb.set_fault("teletracker", "http500_empty", count=1)
        r = http.post(sb.base_url("teletracker") + "/auth/login", data={}, timeout=T)
        assert r.status_code == 500 and r.content == b"" and r.headers["Content-Length"] == "0"
        assert http.post(sb.base_url("teletracker") + "/auth/login", data={}, timeout=T).status_code == 400, "count=1"

    def test_html502(self, sb, http):
        sb.set_fault("cloverdx", "html502")
        r = http.get(cheap(sb), timeout=T)
        assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html") and "Bad Gateway" in r.text
        assert http.get(cheap(sb), timeout=T).status_code == 502, "count=None: until cleared"
        sb.clear_faults()
        assert http.get(cheap(sb), timeout=T).status_code == 200

    def test_slow(self, sb, http):
        sb.set_fault("cloverdx", "slow", count=1, seconds=0.3)
        started = time.monotonic()
        r = http.get(cheap(sb), timeout=T)
        assert r.status_code == 200 and r.text == "OK" and time.monotonic() - started >= 0.3
        with pytest.raises(requests.Timeout):
            sb.set_fault("cloverdx", "slow", count=1, seconds=1)
            http.get(cheap(sb), timeout=0.2)

    def test_malformed_json(self, sb, http):
        sb.set_fault("clever", "malformed_json", count=1)
        r = http.get(sb.base_url("clever") + "/v3.0/districts", headers=CLEVER, timeout=T)
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
        with pytest.raises(ValueError):
            r.json()

    def test_xml_instead_of_json(self, sb, http):
        sb.set_fault("cleanlist", "xml_instead_of_json", count=1)
        r = http.post(sb.base_url("cleanlist") + "/api/pub_echo/", json={}, timeout=T)
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/xml"
        assert r.content.startswith(b"<?xml")

    def test_html_200_huge(self, sb, http):
        sb.set_fault("cleverbridge", "html_200_huge", count=1)
        r = http.get(sb.base_url("cleverbridge") + "/connection/test", auth=CB_AUTH, headers=JSON, timeout=T)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
        assert len(r.content) == 2 * 1024 * 1024

    def test_429_no_headers(self, sb, http):
        sb.set_fault("clever", "429_no_headers", count=1)
        r = http.get(sb.base_url("clever") + "/v3.0/districts", headers=CLEVER, timeout=T)
        assert r.status_code == 429 and r.content == b""
        assert not any(h in r.headers for h in (*RATE_HEADERS, "Retry-After"))

    def test_reset(self, sb, http):
        sb.set_fault("cloverdx", "reset", count=1)
        with pytest.raises(requests.ConnectionError):
            http.get(cheap(sb), timeout=T)
        assert http.get(cheap(sb), timeout=T).status_code == 200
        assert sb.stats("cloverdx")["dropped"] == 1

    def test_drop_after_refresh_cleanlist(self, sb, http):
        sb.set_fault("cleanlist", "drop_after_refresh", count=1)
        assert http.post(sb.base_url("cleanlist") + "/api/pub_echo/", json={}, timeout=T).status_code == 200, \
            "only refresh calls are hit (and counted)"
        with pytest.raises(requests.ConnectionError):
            http.post(sb.base_url("cleanlist") + "/api/_refresh/", json={}, headers=token(CL_TOKEN), timeout=T)
        r = http.post(sb.base_url("cleanlist") + "/api/email_verify/", json={"email": "a@b.co"},
                      headers=token(CL_TOKEN), timeout=T)
        assert r.status_code == 401, "the refresh happened: the old token is rescinded"
        stats = sb.stats("cleanlist")
        assert [(c["token_was_current"], c["rotated"]) for c in stats["refresh_calls"]] == [(True, True)]
        assert stats["dropped"] == 1 and stats["fault"] is None
        (new_token,) = sb.vendor("cleanlist").tokens.live
        assert new_token != CL_TOKEN

    def test_drop_after_refresh_teletracker(self, sb, http):
        login = http.post(sb.base_url("teletracker") + "/auth/login",
                          data={"username": TT["username"], "password": TT["password"]}, timeout=T).json()["data"]
        sb.set_fault("teletracker", "drop_after_refresh")
        with pytest.raises(requests.ConnectionError):
            http.post(sb.base_url("teletracker") + "/auth/refresh", data={"refresh_token": login["refreshToken"]},
                      timeout=T)
        assert login["refreshToken"] in sb.vendor("teletracker").refresh_tokens.rescinded
        assert len(sb.vendor("teletracker").refresh_tokens.live) == 1

    def test_bad_fault_requests(self, sb):
        with pytest.raises(ValueError):
            sb.set_fault("clever", "nope")
        with pytest.raises(ValueError):
            sb.set_fault("clever", "drop_after_refresh")
        with pytest.raises(ValueError):
            sb.set_fault("clever", "slow", count=0)
        with pytest.raises(ValueError):
            sb.set_fault("clever", "reset", seconds=1)
        with pytest.raises(KeyError):
            sb.set_fault("nobody", "reset")


# --------------------------------------------------------------------------- control API and server


class TestControlAPI:
    def test_index(self, sb, http):
        r = http.get(sb.url + "/_sandbox/", timeout=T)
        assert r.status_code == 200
        body = r.json()
        assert set(body["vendors"]) == set(VENDOR_NAMES)
        assert body["vendors"]["cleanlist"]["base_url"] == sb.base_url("cleanlist")
        assert "drop_after_refresh" in body["vendors"]["cleanlist"]["faults"]
        assert "suspended" in body["vendors"]["cloverdx"]["faults"]

    def test_fault_over_http(self, sb, http):
        r = http.post(sb.url + "/_sandbox/cloverdx/fault", json={"fault": "slow", "count": 2, "seconds": 0.01}, timeout=T)
        assert r.status_code == 200 and r.json()["fault"] == {"fault": "slow", "remaining": 2, "seconds": 0.01}
        assert http.post(sb.url + "/_sandbox/cloverdx/fault", json={"fault": None}, timeout=T).status_code == 200
        assert sb.stats("cloverdx")["fault"] is None
        r = http.post(sb.url + "/_sandbox/cloverdx/fault", json={"fault": "bogus"}, timeout=T)
        assert r.status_code == 400 and "bogus" in r.json()["error"]
        http.post(sb.url + "/_sandbox/cloverdx/fault", json={"fault": "http500_empty"}, timeout=T)
        assert http.get(cheap(sb), timeout=T).status_code == 500

    def test_stats_over_http(self, sb, http):
        for _ in range(10):
            http.get(cheap(sb), timeout=T)
        stats = http.get(sb.url + "/_sandbox/cloverdx/stats", timeout=T).json()
        assert stats["requests"] == 10 and stats["by_status"] == {"200": 10}
        assert stats["max_per_second"] == 10 and stats["max_in_flight"] == 1
        assert http.get(sb.url + "/_sandbox/teletracker/stats", timeout=T).json()["refresh_calls"] == []

    def test_credentials_over_http(self, sb, http):
        r = http.post(sb.url + "/_sandbox/cleanlist/credentials", json={"token": "tok-123"}, timeout=T)
        assert r.status_code == 200
        r = http.post(sb.base_url("cleanlist") + "/api/email_verify/", json={"email": "a@b.co"},
                      headers=token("tok-123"), timeout=T)
        assert r.status_code == 200
        r = http.post(sb.url + "/_sandbox/teletracker/credentials",
                      json={"username": "u2", "password": "p2", "account_id": "77"}, timeout=T)
        assert r.status_code == 200
        r = http.post(sb.base_url("teletracker") + "/auth/login", data={"username": "u2", "password": "p2"}, timeout=T)
        assert r.json()["data"]["account_id"] == "77"
        r = http.post(sb.url + "/_sandbox/cleverbridge/credentials", json={"username": "x"}, timeout=T)
        assert r.status_code == 400 and "password" in r.json()["error"]

    def test_config_and_reset_over_http(self, sb, http):
        r = http.post(sb.url + "/_sandbox/cleverbridge/config", json={"rate_limit_per_second": 30}, timeout=T)
        assert r.status_code == 200 and r.json()["rate_limit_per_second"] == 30
        assert sb.vendor("cleverbridge").rate_limit_per_second == 30
        assert http.post(sb.url + "/_sandbox/cleverbridge/config", json={"nope": 1}, timeout=T).status_code == 400
        for _ in range(3):
            http.get(sb.base_url("cleverbridge") + "/connection/test", auth=(CB["username"], "x"), headers=JSON, timeout=T)
        assert sb.stats("cleverbridge")["locked_users"] == [CB["username"]]
        assert http.post(sb.url + "/_sandbox/reset", timeout=T).json() == {"ok": True}
        stats = sb.stats("cleverbridge")
        assert stats["locked_users"] == [] and stats["requests"] == 0
        assert stats["settings"]["rate_limit_per_second"] == 30, "settings survive reset()"

    def test_unknown_paths(self, sb, http):
        assert http.get(sb.url + "/_sandbox/nobody/stats", timeout=T).status_code == 404
        r = http.get(sb.url + "/nobody/x", timeout=T)
        assert r.status_code == 404 and "/cleanlist" in r.json()["vendors"]


class TestServer:
    def test_keep_alive_throughput(self, sb, http):
        http.get(cheap(sb), timeout=T)
        n = 1000
        started = time.perf_counter()
        for _ in range(n):
            http.get(cheap(sb), timeout=T)
        rate = n / (time.perf_counter() - started)
        print(f"\nkeep-alive requests.Session against the sandbox: {rate:.0f} req/s")
        assert rate > 100
        assert sb.stats("cloverdx")["by_status"] == {200: n + 1}

    def test_start_stop_and_context_manager(self):
        with SandboxServer(port=0) as s:
            assert s.url.startswith("http://127.0.0.1:") and s.base_url("clever") == s.url + "/clever"
            with requests.Session() as session:
                assert session.get(cheap(s), timeout=T).status_code == 200
                s.stop()
                with pytest.raises(requests.ConnectionError):
                    session.get(cheap(s), timeout=T)
        s.stop()  # idempotent
