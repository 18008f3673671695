"""The one outbound path: redaction, body caps, broken answers, retries, 401 handling, sessions."""

from __future__ import annotations

import base64
import json
import socket
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from time import time

import pytest

from connections.models import Credential, CredentialState, Outcome, RequestLog
from connections.outbound import client, transport
from connections.outbound.client import RequestSpec, send
from connections.providers.http import parse_retry_after
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from connections.services.testing import send_test
from connections.services.vault import credential_activate, credential_add
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db]
USER = Actor(label="tester", via="user")
WORKER = Actor(label="scheduler", via="schedule")


def all_row_text(connection=None) -> str:
    parts = []
    rows = RequestLog.objects.filter(connection=connection) if connection else RequestLog.objects.all()
    for row in rows:
        parts += [row.path, row.request_excerpt, row.response_excerpt, row.error_message, row.error_code,
                  row.vendor_request_id, json.dumps(row.error_details), json.dumps(row.rate_limit)]
    return "\n".join(parts)


def forms_of(value: str) -> list[str]:
    from urllib.parse import quote, quote_plus

    return [value, base64.b64encode(value.encode()).decode().rstrip("="), quote(value, safe=""), quote_plus(value)]


# ----------------------------------------------------------------------------- a scripted stub vendor


class Stub:
    """A tiny HTTP server answering from a script of (status, headers, body) and recording requests."""

    def __init__(self):
        self.script: list[tuple[int, dict, bytes]] = []
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                length = int(self.headers.get("Content-Length") or 0)
                stub.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "body": self.rfile.read(length) if length else b""})
                status, headers, body = stub.script.pop(0) if stub.script else (200, {}, b"{}")
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    server = Stub()
    yield server
    server.close()


STUB_SECRET = {"token": "stub-token-" + "x" * 20}


# ----------------------------------------------------------------------------- redaction


class TestRedaction:
    def test_no_credential_value_reaches_any_row(self, vendors):
        calls = {
            "cleverbridge": RequestSpec("GET", "/subscription/getsubscription", params={"SubscriptionId": "S94817263"}),
            "clever": RequestSpec("GET", "/v3.0/users"),
            "cloverdx": RequestSpec("GET", "/executions"),
            "teletracker": RequestSpec("GET", "/reports/call-data", params={"start": "2025-11-20"}),
            "cleanlist": RequestSpec("POST", "/email_verify/", json={"email": "ops@example.com"}),
        }
        checked = []
        for provider, spec in calls.items():
            secret = dict(DEMO_CREDENTIALS[provider])
            if provider == "teletracker":
                secret["auth_scheme"] = "bearer_session"
            connection = factories.connection(provider, sandbox=vendors, secret=secret)
            assert send_test(connection, connection.effective_options(), actor=USER).ok
            assert send(connection, spec, actor=USER).ok
            # A failing call too: errors echo input, excerpts carry the body.
            send(connection, RequestSpec("POST", "/nothing", json={"x": 1}), actor=USER)
            stored = connection.credentials.get(state=CredentialState.ACTIVE).secret.reveal()
            # Only secret fields: user names and account ids are identifiers, shown like fingerprints.
            values = [v for k, v in stored.items() if isinstance(v, str) and k in ("password", "token")]
            if "session" in stored:
                values += [stored["session"]["token"], stored["session"]["refresh_token"]]
            if "username" in stored:
                values.append(f"{stored['username']}:{stored['password']}")
            checked.append((connection, values))
        # Cleanlist's refresh answers a brand-new token: it must not reach the log either.
        cleanlist = factories.connection("cleanlist", sandbox=vendors)
        refresh = cleanlist.provider_obj.refresh_request(DEMO_CREDENTIALS["cleanlist"])
        refreshed = send(cleanlist, refresh, actor=USER, operation="refresh", retry=False)
        checked.append((cleanlist, [DEMO_CREDENTIALS["cleanlist"]["token"], refreshed.data["result"]["new_token"]]))

        assert RequestLog.objects.count() >= 16 and "[REDACTED]" in all_row_text()
        for connection, values in checked:
            text = all_row_text(connection)
            for value in values:
                for form in forms_of(value):
                    assert form not in text, f"{form!r} (a form of a credential value) is in a RequestLog row"

    def test_authorization_cookie_and_query_secrets(self, stub):
        connection = factories.connection("clever", base_url=stub.url, secret=STUB_SECRET)
        send(connection, RequestSpec("GET", "/v3.0/x", params={"access_token": "QS-SECRET-1", "page": "2"},
                                     headers={"Cookie": "sid=COOKIE-SECRET-2"}), actor=USER)
        row = RequestLog.objects.get()
        assert "access_token=%5BREDACTED%5D" in row.path or "access_token=[REDACTED]" in row.path
        assert "page=2" in row.path
        text = all_row_text()
        assert "QS-SECRET-1" not in text and "COOKIE-SECRET-2" not in text
        assert "Authorization: [REDACTED]" in row.request_excerpt and "Cookie: [REDACTED]" in row.request_excerpt
        assert stub.requests[0]["headers"]["Authorization"] == "Bearer stub-token-" + "x" * 20

    def test_vendor_echoing_the_secret_in_an_error(self, stub):
        connection = factories.connection("clever", base_url=stub.url, secret=STUB_SECRET)
        token = "stub-token-" + "x" * 20
        stub.script.append((400, {}, json.dumps({"message": f"bad token {token}"}).encode()))
        result = send(connection, RequestSpec("GET", "/v3.0/x"), actor=USER)
        assert token not in result.error_message and "[REDACTED]" in result.error_message
        assert token not in all_row_text()


# ----------------------------------------------------------------------------- broken answers


class TestBrokenAnswers:
    @pytest.mark.parametrize("fault, outcome, code, words", [
        ("malformed_json", Outcome.HTTP_ERROR, "malformed_json", "not valid JSON"),
        ("xml_instead_of_json", Outcome.HTTP_ERROR, "unexpected_content_type", "application/xml"),
        ("html_200_huge", Outcome.HTTP_ERROR, "body_too_large", "larger than 1024 KB"),
        ("html502", Outcome.HTTP_ERROR, "bad_gateway", "HTML page: 502 Bad Gateway"),
        ("http500_empty", Outcome.HTTP_ERROR, "server_error", "empty body"),
        ("429_no_headers", Outcome.THROTTLED, "rate_limited", "empty body"),
        ("reset", Outcome.NETWORK_ERROR, "connection_reset", "dropped"),
    ])
    def test_each_becomes_a_row_with_a_clear_outcome(self, vendors, fault, outcome, code, words):
        connection = factories.connection("clever", sandbox=vendors)
        vendors.set_fault("clever", fault, count=1)
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        (row,) = RequestLog.objects.filter(pk__in=result.log_ids)
        assert (row.outcome, row.error_code) == (outcome, code)
        assert words in row.error_message
        assert len(row.response_excerpt) < 4200 and len(row.request_excerpt) < 4200
        assert result.status_code == row.status_code and not result.ok

    def test_huge_body_is_capped(self, vendors, settings):
        settings.OUTBOUND_MAX_BODY_BYTES = 64 * 1024
        connection = factories.connection("clever", sandbox=vendors)
        vendors.set_fault("clever", "html_200_huge", count=1)
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
        assert result.error_code == "body_too_large" and "64 KB" in result.error_message

    def test_endless_body_stops_at_the_cap(self, settings):
        settings.OUTBOUND_MAX_BODY_BYTES = 256 * 1024
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        stop = threading.Event()

        def serve():
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[")
            try:
                while not stop.is_set():
                    conn.sendall(b"1," * 8192)
            except OSError:
                pass
            conn.close()

        threading.Thread(target=serve, daemon=True).start()
        connection = factories.connection("clever", base_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
                                          secret={"token": "t" * 20})
        started = time()
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        stop.set()
        listener.close()
        assert result.error_code == "body_too_large" and time() - started < 10

    def test_redirect_is_not_followed(self, stub):
        connection = factories.connection("clever", base_url=stub.url, secret=STUB_SECRET)
        stub.script.append((302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""))
        result = send(connection, RequestSpec("GET", "/v3.0/x"), actor=USER)
        assert result.error_code == "redirect" and "not followed" in result.error_message
        assert len(stub.requests) == 1

    def test_vendor_cookies_are_never_replayed(self, stub):
        connection = factories.connection("clever", base_url=stub.url, secret=STUB_SECRET)
        stub.script.append((200, {"Set-Cookie": "sid=abc; Path=/"}, b"{}"))
        send(connection, RequestSpec("GET", "/v3.0/x"), actor=USER)
        send(connection, RequestSpec("GET", "/v3.0/x"), actor=USER)
        assert "Cookie" not in stub.requests[1]["headers"]


# ----------------------------------------------------------------------------- timeouts and failures


class TestNetwork:
    def test_read_timeout_may_have_been_delivered(self, vendors, settings):
        settings.OUTBOUND_READ_TIMEOUT = 0.3
        connection = factories.connection("clever", sandbox=vendors)
        vendors.set_fault("clever", "slow", count=1, seconds=1.0)
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        assert result.outcome == Outcome.TIMEOUT and result.error_code == "read_timeout"
        assert result.maybe_delivered and result.status_code is None

    def test_connect_failure_was_not_delivered_and_is_retried(self, sleeps):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now
        connection = factories.connection("cloverdx", base_url=f"http://127.0.0.1:{port}",
                                          secret={"username": "u", "password": "p-123456"})
        result = send(connection, RequestSpec("GET", "/executions"), actor=WORKER)
        assert result.error_code == "connect_failed" and not result.maybe_delivered
        # The operating system's words, not urllib3's wrapping of them.
        assert result.error_message == "connect: could not connect to 127.0.0.1 (connection refused) (the request was not sent)"
        assert result.attempts == 5 and len(sleeps) == 4  # 5 tries in all, backoff with jitter

    def test_no_active_credential(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        Credential.objects.filter(connection=connection).update(state=CredentialState.RETIRED)
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
        assert result.error_code == "no_credential" and result.attempts == 0
        assert RequestLog.objects.get(pk=result.log_ids[0]).error_code == "no_credential"

    def test_absolute_url_is_refused(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        result = send(connection, RequestSpec("GET", "https://evil.example/steal"), actor=USER)
        assert result.error_code == "bad_path" and vendors.stats("clever")["requests"] == 0


# ----------------------------------------------------------------------------- retries


class TestRetries:
    @pytest.mark.parametrize("provider", ["cleverbridge", "clever", "cloverdx", "teletracker", "cleanlist"])
    def test_401_is_never_retried(self, vendors, sleeps, provider):
        secret = dict(DEMO_CREDENTIALS[provider])
        secret["password" if "password" in secret else "token"] = "definitely-wrong-1"
        options = {"test_service": "email_verify", "test_body": '{"email": "a@b.example"}'} \
            if provider == "cleanlist" else None
        connection = factories.connection(provider, sandbox=vendors, secret=secret, options=options)
        result = send_test(connection, connection.effective_options(), actor=WORKER)
        assert result.status_code == 401 and result.attempts == 1 and sleeps == []
        sent = vendors.stats(provider)["requests"]
        assert sent == (2 if provider == "cloverdx" else 1)  # CloverDX: + the unauthenticated accessibility check

    def test_retry_after_seconds_and_http_date(self, stub, sleeps):
        connection = factories.connection("clever", base_url=stub.url, secret=STUB_SECRET)
        stub.script += [(429, {"Retry-After": "2"}, b""), (503, {"Retry-After": formatdate(time() + 12, usegmt=True)}, b""),
                        (200, {}, b"{}")]
        result = send(connection, RequestSpec("GET", "/v3.0/x"), actor=WORKER)
        assert result.ok and result.attempts == 3
        # The date is whole seconds and the 429 also blocked the token ~2 s of real time: on a loaded
        # machine a 3 s date had already passed, so the date lies far enough ahead to still count.
        assert sleeps[0] == 2 and 5 < sleeps[1] <= 12

    def test_parse_retry_after(self):
        assert parse_retry_after("60", 0) == 60
        assert parse_retry_after(formatdate(1000, usegmt=True), 990) == 10
        assert parse_retry_after("soon", 0) is None

    def test_the_call_reads_the_credential_active_now_as_the_orm_loads_it(self, vendors):
        """The prepared read of the active credential (outbound/credrows.py): after each activation
        the next call sends with the new version, and the row loads as the ORM's (the decrypted
        secret, JSON meta, dates); no active credential: nothing is sent."""
        connection = factories.connection("clever", sandbox=vendors, secret={"token": "old-token-rescinded-1"})
        for _ in range(2):
            new = credential_add(connection=connection, secret=dict(DEMO_CREDENTIALS["clever"]), actor=USER)
            credential_activate(credential=new)
            read = client._active_credential(connection)
            orm = Credential.objects.get(connection=connection, state=CredentialState.ACTIVE)
            assert read.pk == orm.pk == new.pk and read.version == orm.version
            assert read.secret.reveal() == orm.secret.reveal() == DEMO_CREDENTIALS["clever"]
            assert (read.meta, read.created_at, read.activated_at, read.fingerprint) == (
                orm.meta, orm.created_at, orm.activated_at, orm.fingerprint)
            assert send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER).credential_id == new.pk
        Credential.objects.filter(connection=connection).update(state=CredentialState.RETIRED)
        assert client._active_credential(connection) is None
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
        assert not result.ok and result.error_code == "no_credential" and result.attempts == 0

    def test_401_after_a_finished_rotation_retries_once_with_the_new_secret(self, vendors, monkeypatch):
        connection = factories.connection("clever", sandbox=vendors, secret={"token": "old-token-rescinded-1"})
        old = connection.credentials.get(state=CredentialState.ACTIVE)
        new = credential_add(connection=connection, secret=dict(DEMO_CREDENTIALS["clever"]), actor=USER)
        credential_activate(credential=new)
        real = client._active_credential
        reads = []

        def stale_then_fresh(conn):
            reads.append(1)
            return Credential.objects.get(pk=old.pk) if len(reads) == 1 else real(conn)

        monkeypatch.setattr(client, "_active_credential", stale_then_fresh)
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
        assert result.ok and result.attempts == 2 and result.credential_id == new.pk
        assert [r.status_code for r in RequestLog.objects.filter(chain_id=result.chain_id).order_by("attempt")] == [401, 200]

    def test_401_with_an_explicit_credential_is_not_swapped(self, vendors):
        connection = factories.connection("clever", sandbox=vendors)
        stale = credential_add(connection=connection, secret={"token": "stale-token-000"}, actor=USER)
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER, credential=stale)
        assert result.status_code == 401 and result.attempts == 1


def test_one_keep_alive_adapter_per_thread():
    assert transport._adapter() is transport._adapter()
    other = []
    threading.Thread(target=lambda: other.append(transport._adapter())).start()
    while not other:
        pass
    assert other[0] is not transport._adapter()


@pytest.mark.services
@pytest.mark.django_db
def test_a_failing_log_write_does_not_lose_the_vendors_answer(vendors, monkeypatch, caplog):
    """The database refuses the log row (e.g. it is restarting): the Result still carries the answer,
    so a refresh's new token reaches the rotation code, and the failure is logged without secrets."""
    from django.db import OperationalError

    from connections.models import RequestLog
    from connections.rotation import rotate

    c = factories.connection("cleanlist", sandbox=vendors)
    old = DEMO_CREDENTIALS["cleanlist"]["token"]

    def refuse(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(RequestLog.objects, "create", refuse)
    outcome = rotate(connection=c, actor=Actor(label="t"))
    assert outcome.ok, outcome.message
    new = c.credentials.get(state="active").reveal()["token"]
    assert new != old and not RequestLog.objects.exists()
    assert "could not write the request log row" in caplog.text
    assert old not in caplog.text and new not in caplog.text


@pytest.mark.parametrize("shape", [
    {"headers": {"Accept": "application/json", "User-Agent": None}},
    {"params": {"q": "a b", "page": 2}},
    {"json": {"name": "x", "n": [1, 2]}},
    {"data": {"k": "v w"}},
    {"data": b"raw bytes"},
    {},
])
def test_transport_prepares_what_a_session_would_send(shape):
    """transport.prepare skips requests.Session (its cookie jar, environment and hooks cost more
    than the HTTP itself) but sends the same method, URL, headers and body as a session that trusts
    no environment (user:password in the URL still becomes Basic auth)."""
    import requests

    session = requests.Session()
    session.trust_env = False
    session.headers["User-Agent"] = transport.USER_AGENT
    url = "http://user:pw@vendor.example:8080/a path/é?x=1"
    ours = transport.prepare("post", url, **shape)
    theirs = session.prepare_request(requests.Request("post", url, **shape))
    assert (ours.method, ours.url, dict(ours.headers), ours.body) == \
        (theirs.method, theirs.url, dict(theirs.headers), theirs.body)


def test_the_adapter_remembers_pools_but_never_hands_out_a_closed_one():
    """PinnedAdapter keeps its pool per origin and TLS settings (requests would build a pool key per
    request); a pool closed since is looked up again (urllib3 2 no longer closes the pools its manager
    drops: those keep working)."""
    adapter = transport.PinnedAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
    first = transport.prepare("GET", "http://vendor-a.example:8080/one")
    pool = adapter.get_connection_with_tls_context(first, True)
    assert adapter.get_connection_with_tls_context(transport.prepare("GET", "http://vendor-a.example:8080/two"),
                                                   True) is pool
    assert adapter.get_connection_with_tls_context(first, "/some/ca.pem") is not pool  # other TLS settings
    other = adapter.get_connection_with_tls_context(transport.prepare("GET", "http://vendor-b.example/"), True)
    assert other is not pool and other.host == "vendor-b.example"
    pool.close()
    again = adapter.get_connection_with_tls_context(first, True)
    assert again is not pool and again.pool is not None and again.host == "vendor-a.example"
