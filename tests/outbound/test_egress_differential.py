"""A differential test of the way out: hostile URLs against a loopback listener that counts
connections, with private networks NOT allowed. Whatever the spelling, 0 connections arrive:
through a vendor call (the whole path), a webhook, and the pinned session alone (so the socket
layer refuses even where the URL check were skipped). Also DNS rebinding and redirects.
"""

from __future__ import annotations

import socket
import threading

import pytest

from connections.models import Connection, RequestLog
from connections.outbound import guard, transport
from connections.outbound.client import RequestSpec, send
from connections.services.audit import Actor
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db]

USER = Actor(label="tester", via="user")
PUBLIC = "93.184.216.34"  # never connected to: every case is refused before a socket opens


class Listener:
    """Counts TCP connections on loopback only (127.0.0.1 and, where the host has it, ::1);
    answers each with a small HTTP 200 (or `reply`) so a connection that did arrive would succeed."""

    def __init__(self, reply: bytes = b""):
        self.count = 0
        self.reply = reply or b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        self.sockets = []
        self.v4 = socket.create_server(("127.0.0.1", 0))
        self.port = self.v4.getsockname()[1]
        self.sockets.append(self.v4)
        try:
            self.sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        except OSError:
            pass
        self.stopped = False
        for sock in self.sockets:
            sock.settimeout(0.2)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        while not self.stopped:
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            self.count += 1
            try:
                conn.settimeout(1)
                conn.recv(65536)
                conn.sendall(self.reply)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self.stopped = True
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def fake_dns(monkeypatch, names: dict[str, list[str]], rebinding: dict[str, list[list[str]]] | None = None):
    """Answer these names from the table (the rest from the real resolver). `rebinding` names
    answer their lists in turn: public first, loopback afterwards."""
    real = socket.getaddrinfo
    turns = {name: list(answers) for name, answers in (rebinding or {}).items()}

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        key = host.lower().rstrip(".")
        if key in turns:
            answers = turns[key].pop(0) if len(turns[key]) > 1 else turns[key][0]
        elif key in names:
            answers = names[key]
        else:
            return real(host, port, family, type, proto, flags)
        out = []
        for address in answers:
            if ":" in address:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return out

    monkeypatch.setattr(guard, "_getaddrinfo", getaddrinfo)


ATTACKER_DNS = {
    "loopback.attacker.test": ["127.0.0.1"],
    "mixed.attacker.test": [PUBLIC, "127.0.0.1"],  # one public answer, one loopback
    "v6.attacker.test": ["::1"],
    "mapped.attacker.test": ["::ffff:127.0.0.1"],
    "metadata.attacker.test": ["169.254.169.254"],
    "private.attacker.test": ["10.0.0.7"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "localtest.me": ["127.0.0.1"],
}

# {p} is the listener's port. Families: the reports, userinfo and fragment tricks,
# backslashes, encodings of 127.0.0.1, IPv6 forms, names of private addresses, metadata
# addresses, other schemes, malformed URLs.
HOSTILE = [
    # the issue
    "http://127.0.0.1:{p}\\.x.example.net/",
    "http://127.0.0.1:{p}\\@hooks.example.net/hook",
    "http://127.0.0.1\\.x.corp.example:{p}/",
    "http:\\\\127.0.0.1:{p}/",
    # plain loopback and names for it
    "http://127.0.0.1:{p}/",
    "HTTP://127.0.0.1:{p}/",
    "https://127.0.0.1:{p}/",
    "http://localhost:{p}/",
    "http://localhost.:{p}/",
    "http://LOCALHOST:{p}/",
    "http://127.0.0.2:{p}/",
    # non-canonical IPv4 spellings
    "http://2130706433:{p}/",
    "http://0x7f000001:{p}/",
    "http://0x7f.0x0.0x0.0x1:{p}/",
    "http://0177.0.0.1:{p}/",
    "http://017700000001:{p}/",
    "http://127.1:{p}/",
    "http://127.0.1:{p}/",
    "http://127.000.000.001:{p}/",
    "http://0:{p}/",
    "http://0.0.0.0:{p}/",
    "http://%31%32%37.0.0.1:{p}/",
    "http://127%2e0%2e0%2e1:{p}/",
    "http://\u2460\u2461\u2466.\u24ea.\u24ea.\u2460:{p}/",
    "http://127\u30020\u30020\u30021:{p}/",
    # IPv6 forms
    "http://[::1]:{p}/",
    "http://[0:0:0:0:0:0:0:1]:{p}/",
    "http://[::]:{p}/",
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://[::ffff:7f00:1]:{p}/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/",
    "http://[::127.0.0.1]:{p}/",
    "http://[64:ff9b::127.0.0.1]:{p}/",
    "http://[2002:7f00:1::1]:{p}/",
    "http://[fe80::1%25lo]:{p}/",
    # userinfo, fragments, queries before the host
    "http://user@127.0.0.1:{p}/",
    "http://user:pass@127.0.0.1:{p}/",
    "http://example.com@127.0.0.1:{p}/",
    "http://127.0.0.1:{p}#@example.com/",
    "http://127.0.0.1:{p}?@example.com/",
    "http://example.com:80@127.0.0.1:{p}/",
    # names that resolve to private addresses
    "http://loopback.attacker.test:{p}/",
    "http://mixed.attacker.test:{p}/",
    "http://v6.attacker.test:{p}/",
    "http://mapped.attacker.test:{p}/",
    "http://127.0.0.1.nip.io:{p}/",
    "http://localtest.me:{p}/",
    "http://private.attacker.test:{p}/",
    # metadata and link-local
    "http://169.254.169.254:{p}/latest/meta-data/",
    "http://metadata.attacker.test:{p}/",
    "http://[fd00:ec2::254]:{p}/",
    "http://100.100.100.200:{p}/",
    "http://10.0.0.1:{p}/",
    "http://192.168.1.1:{p}/",
    "http://172.16.0.1:{p}/",
    # other schemes and malformed URLs
    "gopher://127.0.0.1:{p}/_GET%20/",
    "dict://127.0.0.1:{p}/info",
    "file:///etc/passwd",
    "ftp://127.0.0.1:{p}/",
    "//127.0.0.1:{p}/",
    "http:/127.0.0.1:{p}/",
    " http://127.0.0.1:{p}/",
    "http://127.0.0.1:{p}/\r\nHost: x",
]


def urls(port: int) -> list[str]:
    return [u.replace("{p}", str(port)) for u in HOSTILE]


@pytest.fixture
def strict(settings, monkeypatch):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    settings.OUTBOUND_ALLOWED_HOSTS = []
    settings.OUTBOUND_CONNECT_TIMEOUT = 1.0
    fake_dns(monkeypatch, ATTACKER_DNS)
    return settings


def test_there_are_at_least_40_hostile_urls():
    assert len(HOSTILE) >= 40 and len(set(HOSTILE)) == len(HOSTILE)


def test_the_listener_counts(listener):
    """The instrument works: a plain connection is counted (else 0 below would prove nothing)."""
    socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
    for _ in range(50):
        if listener.count:
            break
        threading.Event().wait(0.02)
    assert listener.count == 1


class TestHostileUrls:
    def test_vendor_calls_reach_nothing(self, listener, settings, strict):
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True  # to store the connection; stored rows predate the check
        connection = factories.connection("clever", base_url=f"http://127.0.0.1:{listener.port}",
                                          secret={"token": "diff-token-" + "z" * 20})
        settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
        for url in urls(listener.port):
            Connection.objects.filter(pk=connection.pk).update(base_url=url)
            connection.refresh_from_db()
            result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
            assert not result.ok and result.status_code is None and result.attempts == 0, url
            row = RequestLog.objects.get(pk=result.log_ids[-1])
            assert row.error_code in ("outbound_refused", "dns_failed", "bad_path"), (url, row.error_code)
            assert "diff-token" not in row.error_message + row.request_excerpt
        assert listener.count == 0

    def test_webhooks_reach_nothing(self, listener, strict):
        for url in urls(listener.port):
            with pytest.raises(transport.TransportError) as caught:
                transport.post(url, data=b"{}", headers={}, timeout=(1, 1))
            assert "/hook" not in str(caught.value), url
        assert listener.count == 0

    def test_the_pinned_socket_refuses_without_the_url_check(self, listener, strict):
        """The transport alone (no guard.check_url first): the connection resolves and checks itself."""
        for url in urls(listener.port):
            try:
                transport.send(transport.prepare("GET", url), timeout=(1, 1))
            except Exception:  # noqa: BLE001 — any refusal will do; what counts is the listener
                continue
            pytest.fail(f"{url!r} was sent")
        assert listener.count == 0

    def test_saving_any_of_them_is_refused(self, listener, strict):
        for url in urls(listener.port):
            assert guard.saved_url_problem(url), url


class TestRebinding:
    def test_public_first_then_loopback_reaches_nothing(self, listener, strict, monkeypatch):
        """The check sees a public address; the connection's own lookup gets loopback: refused there."""
        fake_dns(monkeypatch, ATTACKER_DNS, rebinding={"rebind.attacker.test": [[PUBLIC], ["127.0.0.1"]]})
        url = f"https://rebind.attacker.test:{listener.port}"
        assert guard.check_url(url) is None  # the first answer is public
        strict.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
        connection = factories.connection("clever", base_url="https://api.example.com", secret={"token": "r" * 24})
        strict.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
        Connection.objects.filter(pk=connection.pk).update(base_url=url)
        # As if the secret had been entered for this host (else it is refused before any lookup).
        connection.credentials.update(meta={"origin": guard.origin(url)})
        connection.refresh_from_db()
        fake_dns(monkeypatch, ATTACKER_DNS, rebinding={"rebind.attacker.test": [[PUBLIC], ["127.0.0.1"]]})
        result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
        assert not result.ok and result.error_code == "outbound_refused" and "loopback" in result.error_message
        assert result.attempts == 0 and not result.maybe_delivered
        row = RequestLog.objects.get(pk=result.log_ids[-1])
        assert row.error_details["category"] == "refused"
        assert listener.count == 0

    def test_webhook_rebinding_reaches_nothing(self, listener, strict, monkeypatch):
        fake_dns(monkeypatch, ATTACKER_DNS, rebinding={"rebind.attacker.test": [[PUBLIC], ["127.0.0.1"]]})
        with pytest.raises(transport.TransportError):
            transport.post(f"http://rebind.attacker.test:{listener.port}/hook", data=b"{}", headers={},
                           timeout=(1, 1))
        assert listener.count == 0

    def test_allowed_name_connects_to_the_address_it_checked(self, listener, strict, monkeypatch):
        """Pinning, positively: the allowed name is resolved once per connection, and the socket goes
        to that address with the name kept for Host."""
        strict.OUTBOUND_ALLOWED_HOSTS = ["vendor.corp.test"]
        fake_dns(monkeypatch, ATTACKER_DNS, rebinding={"vendor.corp.test": [["127.0.0.1"], ["169.254.169.254"]]})
        response = transport.send(transport.prepare("GET", f"http://vendor.corp.test:{listener.port}/"), timeout=(2, 2))
        assert response.status_code == 200 and listener.count == 1


class TestRedirects:
    def test_a_redirect_to_loopback_is_not_followed(self, listener, strict, monkeypatch):
        """A vendor (allowed) answers 302 to loopback and to another allowed name: neither is followed."""
        for target in (f"http://127.0.0.1:{listener.port}/", f"http://also-allowed.corp.test:{listener.port}/"):
            redirector = Listener(reply=f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode())
            try:
                strict.OUTBOUND_ALLOWED_HOSTS = ["vendor.corp.test", "also-allowed.corp.test"]
                fake_dns(monkeypatch, {**ATTACKER_DNS, "vendor.corp.test": ["127.0.0.1"],
                                       "also-allowed.corp.test": ["127.0.0.1"]})
                connection = factories.connection("clever", base_url=f"http://vendor.corp.test:{redirector.port}",
                                                  secret={"token": "redirect-token-" + "q" * 12})
                result = send(connection, RequestSpec("GET", "/v3.0/districts"), actor=USER)
                assert result.error_code == "redirect" and "not followed" in result.error_message
                status = transport.post(f"http://vendor.corp.test:{redirector.port}/hook", data=b"{}", headers={},
                                        timeout=(2, 2))
                assert status == 302 and redirector.count == 2
            finally:
                redirector.close()
        assert listener.count == 0


def test_an_ip_literal_is_not_looked_up_but_every_other_form_is(monkeypatch):
    """A canonical IP address needs no DNS query per request (guard._literal); odd forms that libc
    reads as addresses (0x7f.1, 2130706433) still go to getaddrinfo, and both are checked alike."""
    asked = []

    def lookup(host, port, *args):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(guard, "_getaddrinfo", lookup)
    assert guard.resolve("8.8.8.8", 443) == [(socket.AF_INET, ("8.8.8.8", 443))]
    assert guard.resolve("[2001:4860:4860::8888]", 443) == [(socket.AF_INET6, ("2001:4860:4860::8888", 443, 0, 0))]
    assert asked == []
    assert guard.resolve("0x7f.1", 443) == [(socket.AF_INET, ("127.0.0.1", 443))]
    assert asked == ["0x7f.1"]
