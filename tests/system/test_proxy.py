"""The egress proxy as applications use it: real HTTP to the `manage.py runall` tree (gunicorn), keys made
with `manage.py appkeys`, the sandbox twins and a recording vendor of our own behind it.

Covers: authentication (none, malformed, revoked, rotated keys), scope (connections, methods), path
tricks, what crosses in each direction (hop-by-hop, auth and cookie headers dropped; the credential
injected; secrets echoed back masked), 413 beyond PROXY_MAX_BODY_BYTES, Switchboard's own 429, Cleanlist
rotations under traffic with no failed call, and the request log rows with the application's name.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from connections.sandbox.credentials import DEMO_CREDENTIALS
from tests.system import harness

pytestmark = [pytest.mark.system]

VENDOR_TOKEN = "9f1c2e7a4b6d8e0f1a3c5e7b9d1f3a5c7e9b1d3f"  # our recording vendor's token


class RecordingVendor:
    """A vendor that records each request's headers and answers with awkward headers of its own."""

    def __init__(self):
        self.seen: list[dict] = []
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                vendor.seen.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                answer = json.dumps({"ok": True, "req_id": "req_rec_1",
                                     "result": {"echo": body.decode(), "you_sent": self.headers.get("Authorization")}})
                payload = answer.encode()
                self.send_response(207)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Vendor-Note", "passed-on")
                self.send_header("Set-Cookie", "vendor_session=abc; HttpOnly")
                self.send_header("WWW-Authenticate", 'Token realm="vendor"')
                self.send_header("Keep-Alive", "timeout=5")
                self.send_header("Connection", "keep-alive, X-Hop-Reply")
                self.send_header("X-Hop-Reply", "must-not-pass")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def add_key(product, name: str, connections: str, *extra: str) -> str:
    out = product.manage("appkeys", "add", name, "--connections", connections, *extra, "--json").stdout
    return json.loads(out)["key"]


def call(product, key: str | None, path: str, method: str = "GET", **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, f"{product.url}/proxy/{path}", headers=headers, timeout=30, **kwargs)


def own_error(response: requests.Response) -> str:
    """The code of an answer Switchboard made itself (asserting it is marked as Switchboard's)."""
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["source"] == "switchboard"
    assert response.headers["X-Switchboard-Error"] == response.json()["error"]["code"]
    return response.json()["error"]["code"]


def shell(product, code: str):
    return json.loads(product.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def vendor():
    running = RecordingVendor()
    yield running
    running.close()


def test_keys_authenticate_and_scope_limits_connections_and_methods(product):
    key = add_key(product, "billing", "demo-cleverbridge")
    read_only = add_key(product, "reporting", "demo-cleanlist", "--methods", "GET")

    ok = call(product, key, "demo-cleverbridge/connection/test")
    assert ok.status_code == 200 and ok.headers["X-Switchboard-Request-Id"]
    assert "X-Switchboard-Error" not in ok.headers

    for header in (None, "Bearer sbk_nope", f"Basic {key}", f"Bearer {key[:-1]}x"):
        r = requests.get(f"{product.url}/proxy/demo-cleverbridge/connection/test", timeout=30,
                         headers={"Authorization": header} if header else {})
        assert r.status_code == 401 and own_error(r) == "unauthenticated", header
        assert r.headers["WWW-Authenticate"].startswith("Bearer")

    out_of_scope = call(product, key, "demo-cleanlist/pub_echo/", "POST", json={})
    assert out_of_scope.status_code == 403 and own_error(out_of_scope) == "not_in_scope"
    missing = call(product, key, "no-such-connection/x")
    assert missing.status_code == 403 and own_error(missing) == "not_in_scope"  # existence is not revealed
    wrong_method = call(product, read_only, "demo-cleanlist/pub_echo/", "POST", json={})
    assert wrong_method.status_code == 403 and own_error(wrong_method) == "method_not_in_scope"

    rotated = json.loads(product.manage("appkeys", "rotate", "billing", "--json").stdout)["key"]
    assert call(product, key, "demo-cleverbridge/connection/test").status_code == 401
    assert call(product, rotated, "demo-cleverbridge/connection/test").status_code == 200
    product.manage("appkeys", "revoke", "billing")
    assert call(product, rotated, "demo-cleverbridge/connection/test").status_code == 401

    listed = json.loads(product.manage("appkeys", "list", "--json").stdout)
    billing = next(a for a in listed if a["name"] == "billing")
    assert billing["active"] is False and billing["calls_24h"] >= 2 and billing["last_used_at"]
    assert rotated not in json.dumps(listed) and key not in json.dumps(listed)


def test_path_tricks_never_leave_the_connection(product):
    key = add_key(product, "tricks", "demo-cleverbridge")
    before = product.sandbox("GET", "cleverbridge/stats")["requests"]
    host, port = product.url.removeprefix("http://").split(":")
    for target in ("/proxy/demo-cleverbridge/connection/../../clever/v3.0/districts",
                   "/proxy/demo-cleverbridge/./connection/test",
                   "/proxy/demo-cleverbridge/connection%2Ftest",
                   "/proxy/demo-cleverbridge/..%2f..%2fclever",
                   "/proxy/demo-cleverbridge/%2e%2e/clever",
                   "/proxy/demo-cleverbridge//evil.example/x",
                   "/proxy/demo-cleverbridge/http://evil.example/x",
                   "http://evil.example/proxy/demo-cleverbridge/connection/test"):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", target, headers={"Authorization": f"Bearer {key}", "Host": f"{host}:{port}"})
        response = conn.getresponse()
        body = json.loads(response.read())
        conn.close()
        assert response.status == 400 and body["error"]["code"] == "bad_path", (target, body)
    assert product.sandbox("GET", "cleverbridge/stats")["requests"] == before  # nothing reached the vendor

    protected = call(product, add_key(product, "refresher", "demo-cleanlist"), "demo-cleanlist/_refresh/", "POST")
    assert protected.status_code == 403 and own_error(protected) == "protected_path"


def test_headers_each_way_credential_injected_and_secrets_masked(product, vendor):
    added = subprocess.run([harness.PYTHON, "manage.py", "connections", "add", "recorder", "--provider", "cleanlist",
                            "--base-url", vendor.url], cwd=harness.ROOT, env=product.env, capture_output=True,
                           text=True, input=json.dumps({"token": VENDOR_TOKEN}), timeout=120)
    assert added.returncode == 0, added.stderr
    key = add_key(product, "headers", "recorder")

    r = call(product, key, "recorder/svc/?q=1", "POST", data=b'{"a": 1}',
             headers={"Content-Type": "application/json", "X-App-Trace": "t-1", "Connection": "X-Hop-Request",
                      "X-Hop-Request": "must-not-pass", "Proxy-Authorization": "Basic c2VjcmV0",
                      "Cookie": "sessionid=abc", "X-Forwarded-For": "10.9.9.9"})
    assert r.status_code == 207  # the vendor's status, as it came
    seen = vendor.seen[-1]
    sent = {k.lower(): v for k, v in seen["headers"].items()}
    assert seen["path"] == "/api/svc/?q=1" and seen["body"] == b'{"a": 1}'
    assert sent["authorization"] == f"Token {VENDOR_TOKEN}"  # the connection's credential, never the app key
    assert sent["x-app-trace"] == "t-1" and sent["content-type"] == "application/json"
    for dropped in ("x-hop-request", "proxy-authorization", "cookie", "x-forwarded-for"):
        assert dropped not in sent, dropped
    assert key not in json.dumps(seen["headers"])

    assert r.headers["X-Vendor-Note"] == "passed-on" and r.headers["X-Switchboard-Request-Id"]
    for dropped in ("WWW-Authenticate", "Keep-Alive", "X-Hop-Reply"):
        assert dropped not in r.headers, dropped
    assert "vendor_session" not in r.headers.get("Set-Cookie", "")  # the vendor's cookies stay with the proxy
    assert VENDOR_TOKEN not in r.text  # the vendor echoed the token: masked on the way back
    assert r.json()["result"]["echo"] == '{"a": 1}'


def test_bodies_beyond_the_limit_get_413_and_are_not_sent(product):
    key = add_key(product, "uploader", "demo-cleanlist")
    before = product.sandbox("GET", "cleanlist/stats")["requests"]
    big = b"x" * (1024 * 1024 + 1)
    r = call(product, key, "demo-cleanlist/pub_echo/", "POST", data=big)
    assert r.status_code == 413 and own_error(r) == "request_too_large"
    chunked = call(product, key, "demo-cleanlist/pub_echo/", "POST", data=iter([big[:600_000], big[600_000:]]))
    assert chunked.status_code == 413 and own_error(chunked) == "request_too_large"
    assert product.sandbox("GET", "cleanlist/stats")["requests"] == before
    small = call(product, key, "demo-cleanlist/pub_echo/", "POST", data=iter([b'{"text": ', b'"hi"}']),
                 headers={"Content-Type": "application/json"})
    assert small.status_code == 200 and small.json()["result"] == {"text": "hi"}


def test_switchboards_own_429_is_marked_and_never_the_vendors(product):
    """Cleverbridge allows 4 in flight: with 4 slow calls holding the slots, a 5th waits PROXY_MAX_WAIT (5 s)
    for the shared limiter and gets Switchboard's 429; the vendor never sees more than 4."""
    key = add_key(product, "busy", "demo-cleverbridge")
    product.sandbox("POST", "cleverbridge/reset", b"{}")
    product.sandbox("POST", "cleverbridge/fault", json.dumps({"fault": "slow", "seconds": 8}).encode())
    try:
        answers: list[requests.Response] = []
        threads = [threading.Thread(target=lambda: answers.append(call(product, key, "demo-cleverbridge/connection/test")))
                   for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        refused = call(product, key, "demo-cleverbridge/connection/test")
        for t in threads:
            t.join()
    finally:
        product.sandbox("POST", "cleverbridge/reset", b"{}")
    assert refused.status_code == 429 and own_error(refused) == "switchboard_throttled"
    assert refused.headers["X-Switchboard-Throttled"] == "1" and int(refused.headers["Retry-After"]) >= 1
    assert [a.status_code for a in answers] == [200] * 4
    assert all("X-Switchboard-Throttled" not in a.headers for a in answers)


@pytest.fixture
def cleanlist_rescinds_with_403(product):
    """The twin answers a rescinded token with 403, as some Cleanlist deployments do (VENDORS.md). (No reset:
    it would forget a token that a scheduled refresh has already rotated.)"""
    product.sandbox("POST", "cleanlist/config", json.dumps({"rescinded_status": 403}).encode())
    yield
    product.sandbox("POST", "cleanlist/config", json.dumps({"rescinded_status": 401}).encode())


def test_cleanlist_rotations_under_traffic_fail_no_call_and_are_logged(product, cleanlist_rescinds_with_403):
    """email_verify checks the token (pub_echo ignores it). Calls in flight when a rotation rescinds the old
    token get 403 from the vendor and are retried once with the new one: the applications see no failure."""
    key = add_key(product, "rotating", "demo-cleanlist")
    failures: list[str] = []
    done = threading.Event()
    count = [0]

    def client():
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        while not done.is_set():
            r = session.post(f"{product.url}/proxy/demo-cleanlist/email_verify/", json={"email": "a@example.com"},
                             timeout=30)
            count[0] += 1
            if r.status_code != 200 or r.json().get("ok") is not True:
                failures.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        rotations = [json.loads(product.manage("connections", "rotate", "demo-cleanlist", "--json").stdout)
                     for _ in range(6)]
    finally:
        done.set()
        for t in threads:
            t.join()
    assert all(r["ok"] for r in rotations), rotations
    assert failures == [] and count[0] > 20, failures[:5]

    rows = shell(product, (
        "import json; from connections.models import RequestLog as R; "
        "q = R.objects.filter(application='rotating'); "
        "print(json.dumps({'n': q.count(), 'ops': sorted(set(q.values_list('operation', flat=True))), "
        "'met': q.filter(status_code=403).count(), "
        "'text': ' '.join(x for r in q for x in (r.path, r.request_excerpt, r.response_excerpt, r.actor_label))}))"))
    assert rows["n"] >= count[0] and rows["ops"] == ["proxy"]
    # Calls did meet the rotations (the old token was refused on its way), and each of them was retried.
    assert rows["met"] > 0, "no call met a rotation: the test proved nothing"
    assert product.sandbox("GET", "cleanlist/stats")["rescinded_token_uses"] == rows["met"]
    assert "app:rotating" in rows["text"]
    assert key not in rows["text"] and DEMO_CREDENTIALS["cleanlist"]["token"] not in rows["text"]
    assert key not in product.log("web")
