"""The error path of the way out: every transport failure is a RequestLog row with a category and
a safe message (category + host, never the library's text); TLS fuzz cases against loopback TLS
listeners with throwaway certificates; no secret in a debug page; webhook errors stored the same
safe way, the webhook's secret path never shown or logged."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
import struct
import sys
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.views.debug import ExceptionReporter

from connections import alerts
from connections.alerts.delivery import queue as queue_delivery
from connections.models import AlertDelivery, Health, RequestLog
from connections.outbound import transport
from connections.outbound.client import RequestSpec, send
from connections.services.audit import Actor
from connections.services.testing import connection_test
from tests import factories
from tests.cli import run_cli
from tests.outbound.test_egress_differential import fake_dns

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

USER = Actor(label="tester", via="user")
TOKEN = "tls-fuzz-token-" + "k" * 16
LIBRARY_WORDS = ("Errno", "HTTPSConnectionPool", "HTTPConnectionPool", "Max retries", "urllib3", "SSLError(",
                 "/v3.0", "Caused by")


# ----------------------------------------------------------------------------- certificates


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, sans: list[x509.GeneralName], key, issuer_name=None, issuer_key=None, ca=False):
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name or _name(subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway CA, leaves it signed (vendor.corp.test + 127.0.0.1, other.example), a self-signed leaf."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Switchboard test CA", [], ca_key, ca=True)
    files = {"ca": folder / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaves = {
        "good": ("vendor.corp.test", [x509.DNSName("vendor.corp.test"),
                                      x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], True),
        "wrong_host": ("other.example", [x509.DNSName("other.example")], True),
        "self_signed": ("vendor.corp.test", [x509.DNSName("vendor.corp.test"),
                                             x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], False),
    }
    for label, (cn, sans, signed) in leaves.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(cn, sans, key, ca.subject if signed else None, ca_key if signed else None)
        (folder / f"{label}.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
        files[label] = folder / f"{label}.pem"
    return files


# ----------------------------------------------------------------------------- listeners


class Misbehaving:
    """A loopback-only listener that does one thing wrong (or right, for "good")."""

    def __init__(self, mode: str, pki=None):
        self.mode, self.sni, self.count = mode, [], 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.context = None
        if mode in ("good", "wrong_host", "self_signed"):
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(pki[mode])
            self.context.sni_callback = lambda s, name, c: self.sni.append(name) and None
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.count += 1
            try:
                self._handle(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _handle(self, conn):
        conn.settimeout(2)
        ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        if self.mode == "reset":  # read the ClientHello, answer with a TCP reset
            conn.recv(4096)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif self.mode == "eof":
            conn.recv(4096)
        elif self.mode == "garbage":
            conn.recv(4096)
            conn.sendall(os.urandom(64))
        elif self.mode == "plain_http":
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        else:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)
                tls.sendall(ok)

    def close(self):
        self.stopped = True
        self.sock.close()


@pytest.fixture
def listen(pki):
    opened = []

    def start(mode):
        server = Misbehaving(mode, pki)
        opened.append(server)
        return server

    yield start
    for server in opened:
        server.close()


@pytest.fixture
def trust_test_ca(pki, monkeypatch):
    monkeypatch.setattr(transport, "VERIFY", str(pki["ca"]))


def tls_connection(port: int, host: str = "127.0.0.1"):
    return factories.connection("clever", base_url=f"https://{host}:{port}", secret={"token": TOKEN})


def assert_safe(row: RequestLog, category: str, host: str = "127.0.0.1"):
    assert row.error_details.get("category") == category, (row.error_code, row.error_details, row.error_message)
    assert row.error_message.startswith(f"{category}: ") and host in row.error_message
    for word in (*LIBRARY_WORDS, TOKEN):
        assert word not in row.error_message, (word, row.error_message)
    assert TOKEN not in row.request_excerpt


# ----------------------------------------------------------------------------- TLS fuzz


class TestTls:
    @pytest.mark.parametrize("mode, phrase", [
        ("self_signed", "its certificate is self-signed"),
        ("wrong_host", "its certificate is not valid for this IP address"),
        ("plain_http", "did not answer in TLS"),
        ("garbage", "did not answer in TLS"),
        ("eof", "closed the connection during the handshake"),
    ])
    def test_handshake_failures_are_rows_with_a_safe_message(self, listen, trust_test_ca, mode, phrase):
        server = listen(mode)
        result = send(tls_connection(server.port), RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        assert not result.ok and result.error_code == "tls_error" and phrase in result.error_message
        assert not result.maybe_delivered
        assert_safe(RequestLog.objects.get(pk=result.log_ids[-1]), "tls")

    def test_handshake_reset(self, listen):
        server = listen("reset")
        result = send(tls_connection(server.port), RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        assert not result.ok and result.status_code is None
        row = RequestLog.objects.get(pk=result.log_ids[-1])
        assert_safe(row, row.error_details["category"])
        assert row.error_details["category"] in ("reset", "tls")

    def test_trusted_certificate_works_through_the_pinned_socket_with_sni(self, listen, trust_test_ca, monkeypatch):
        """Pinning keeps the name: SNI and the certificate check use vendor.corp.test, not the address."""
        fake_dns(monkeypatch, {"vendor.corp.test": ["127.0.0.1"]})
        server = listen("good")
        result = send(tls_connection(server.port, host="vendor.corp.test"), RequestSpec("GET", "/v3.0/districts"),
                      actor=USER)
        assert result.ok and result.status_code == 200, result.error_message
        assert server.sni == ["vendor.corp.test"]

    def test_a_tls_failure_in_a_test_is_a_result_not_a_crash(self, listen, sleeps):
        """Issue 12 item 4: `_caused_by` followed ssl.SSLError.reason (a string) and send() raised."""
        server = listen("self_signed")
        connection = tls_connection(server.port)
        result = connection_test(connection=connection, actor=USER)
        connection.refresh_from_db()
        assert not result.ok and connection.health in (Health.FAILING, Health.DEGRADED, Health.UNKNOWN)
        assert "self-signed" in connection.health_reason and TOKEN not in connection.health_reason
        r = run_cli("test", connection.name)
        assert r.code == 1 and "tls: the TLS handshake with 127.0.0.1 failed" in r.out + r.err

    def test_the_test_page_answers_instead_of_a_500(self, listen, admin_client_, sleeps):
        server = listen("plain_http")
        connection = tls_connection(server.port)
        response = admin_client_.post(f"/connections/{connection.name}/test/", HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        page = response.content.decode()
        assert "did not answer in TLS" in page and TOKEN not in page


class TestOtherFailures:
    def test_dns(self, monkeypatch):
        fake_dns(monkeypatch, {})
        connection = factories.connection("clever", base_url="https://no-such-vendor.invalid", secret={"token": TOKEN})
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
        assert result.error_code == "dns_failed"
        row = RequestLog.objects.get(pk=result.log_ids[-1])
        assert row.error_details["category"] == "dns" and "no-such-vendor.invalid" in row.error_message

    def test_connect_refused(self):
        probe = socket.create_server(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        result = send(tls_connection(port), RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        assert_safe(RequestLog.objects.get(pk=result.log_ids[-1]), "connect")
        assert "connection refused" in result.error_message

    def test_read_timeout(self, settings):
        settings.OUTBOUND_READ_TIMEOUT = 0.3
        silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
        try:
            connection = factories.connection("clever", base_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
                                              secret={"token": TOKEN})
            result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER, retry=False)
        finally:
            silent.close()
        assert result.error_code == "read_timeout" and result.maybe_delivered
        assert_safe(RequestLog.objects.get(pk=result.log_ids[-1]), "timeout")


class TestNoSecretInErrorReports:
    def test_debug_page_of_a_crash_under_send_hides_the_token(self, settings, monkeypatch, vendors):
        """DEBUG on, a crash deep in urllib3 (whose frames hold the Authorization header)."""
        settings.DEBUG = True
        connection = factories.connection("clever", sandbox=vendors)

        def boom(self, *args, **kwargs):
            raise RuntimeError("boom inside the HTTP library")

        monkeypatch.setattr(transport.PinnedHTTPConnection, "request", boom)
        with pytest.raises(RuntimeError):
            try:
                send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
            except RuntimeError:
                page = ExceptionReporter(None, *sys.exc_info()).get_traceback_html()
                raise
        token = connection.credentials.get().reveal()["token"]  # (read after: the test's own frame is in the report)
        assert "boom inside the HTTP library" in page and "urlopen" in page
        assert token not in page


# ----------------------------------------------------------------------------- webhooks


class TestWebhookErrors:
    SECRET_PATH = "/services/T0AAAA/B0BBBB/XyZsEcReTwEbHoOkToKeN"

    def test_a_delivered_webhook_logs_no_path_even_at_debug(self, caplog):
        from tests.receivers import WebhookReceiver

        with WebhookReceiver() as hook, caplog.at_level(logging.DEBUG):
            channel = alerts.channel_create(name="hook", kind="webhook", target=hook.url, actor=Actor(label="admin"))
            [delivery] = queue_delivery(None, subject="[Switchboard] Test alert", channels=[channel], body="hello")
            assert alerts.deliver(delivery.pk, final_attempt=True) == "sent"
            assert hook.received
        assert "secret-webhook-path" not in caplog.text and "secret-webhook-path" not in channel.display_target

    @pytest.mark.parametrize("mode", ["self_signed", "plain_http", "reset", "closed"])
    def test_delivery_errors_are_safe_on_the_page_and_in_the_log(self, listen, mode, admin_client_, caplog):
        if mode == "closed":
            probe = socket.create_server(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            probe.close()
        else:
            port = listen(mode).port
        channel = alerts.channel_create(name="slack", kind="webhook", target=f"https://127.0.0.1:{port}{self.SECRET_PATH}",
                                        actor=Actor(label="admin"))
        [delivery] = queue_delivery(None, subject="[Switchboard] Test alert", channels=[channel], body="hello")
        with caplog.at_level(logging.DEBUG):
            assert alerts.deliver(delivery.pk, final_attempt=True) == "failed"
        delivery = AlertDelivery.objects.get(pk=delivery.pk)
        assert delivery.last_error.split(":")[0] in ("tls", "connect", "reset")
        assert "127.0.0.1" in delivery.last_error
        page = admin_client_.get("/alerts/").content.decode()
        assert "slack:" in page and "https://127.0.0.1:" in page
        assert delivery.last_error.split(" (")[0] in page.replace("&#x27;", "'")
        for text in (delivery.last_error, page, caplog.text):
            assert "XyZsEcReT" not in text and "B0BBBB" not in text
            for word in LIBRARY_WORDS:
                assert word not in text.replace("/v3.0", ""), word

    def test_earlier_leaky_errors_are_scrubbed_by_the_migration(self):
        import importlib

        from django.apps import apps

        scrub = importlib.import_module("connections.migrations.0008_egress_scrub_webhook_errors").scrub
        hook = alerts.channel_create(name="hook", kind="webhook", target=f"https://hooks.example.net{self.SECRET_PATH}",
                                     actor=Actor(label="admin"))
        mail = alerts.channel_create(name="mail", kind="email", target="ops@example.com", actor=Actor(label="admin"))
        leaky = f"ConnectionError: HTTPSConnectionPool(host='hooks.example.net', port=443): url: {self.SECRET_PATH}"
        for channel in (hook, mail):
            [delivery] = queue_delivery(None, subject="s", channels=[channel], body="b")
            AlertDelivery.objects.filter(pk=delivery.pk).update(last_error=leaky, state="failed")
        scrub(apps, None)
        errors = dict(AlertDelivery.objects.values_list("channel__kind", "last_error"))
        assert "XyZsEcReT" not in errors["webhook"] and "removed" in errors["webhook"]
        assert errors["email"] == leaky
