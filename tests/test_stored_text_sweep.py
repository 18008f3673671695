"""Every stored text, searched for every secret in every encoding (issue 12 item 9).

A hostile vendor twin on loopback echoes whatever secret reaches it back in its bodies, headers
and error messages, in every spelling a vendor might use: raw, upper and lower case, hex, base64
(alone and inside "user:secret"), percent-encoding, \\u escapes and UTF-16. Switchboard tests,
calls, refreshes, verifies a pasted secret and delivers a webhook alert against it. Then every
text Switchboard stored (RequestLog fields, connections' messages, rotation errors, alert events
and delivery errors, audit details, credential meta, the cache in Redis, every log line) is
searched for each secret in each encoding: 0 hits. And the words that are not secrets (user
names, account ids, ordinary words the twin says) come through unmangled.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from django.core.cache import cache

from connections.alerts.delivery import channel_create, channel_test, deliver
from connections.models import (
    AlertDelivery,
    AlertEvent,
    AuditEvent,
    Connection,
    Credential,
    RequestLog,
    RotationAttempt,
)
from connections.rotation import rotate, staged_replace
from connections.services.audit import Actor
from connections.services.testing import connection_call, connection_test
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db]
ACTOR = Actor(label="sweep", via="cli")
PLAIN_WORDS = "empty body; the quick brown fox"  # every echo carries these: they must survive
WEBHOOK_TOKEN = "XoxbWebhookPathSecret7Q2mZ9"
SECRETS = {
    "clever": {"token": "Clv7tokenQz3Wm8Kp2Lr5Ny9Bx4"},
    "cleverbridge": {"username": "clover", "password": "CbPassW0rd7Hj3Kq9Zt2Vn6"},
    "cloverdx": {"username": "switchboard", "password": "CdxPass5Rt8Yu2Io4Pm7Qa"},
    "teletracker": {"username": "ops@switchboard.example", "password": "TtPass9Gh4Jk6Ll2Zx8Cv",
                    "account_id": "10517"},
    "cleanlist": {"token": "ClnToken3Fg7Hj2Kl9Mn4Bv6Cx"},
}
PASTED = {"token": "PastedWrong8Tk4Yh2Ui6Op3"}  # a pasted Clever token the twin refuses


def spellings(secret: str) -> dict[str, str]:
    """How the twin echoes a secret (what a careless vendor might write)."""
    raw = secret.encode()
    return {
        "raw": secret, "upper": secret.upper(), "lower": secret.lower(), "hex": raw.hex(), "HEX": raw.hex().upper(),
        "base64": base64.b64encode(raw).decode(), "base64 user:secret": base64.b64encode(b"u:" + raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="), "percent": quote(secret, safe=""),
        "percent all": "".join(f"%{b:02X}" for b in raw), "\\u": "".join(f"\\u{ord(c):04x}" for c in secret),
        "utf-16-le": raw.decode().encode("utf-16-le").decode("latin-1"),
        "utf-16-be": raw.decode().encode("utf-16-be").decode("latin-1"),
    }


def needles(secret: str) -> dict[str, str]:
    """What to search stored text for (case-insensitively): each spelling, and base64 at every
    alignment (the core characters that encode the secret whatever surrounds it)."""
    found = {name: value.lower() for name, value in spellings(secret).items() if name != "base64 user:secret"}
    found |= base64_cores(secret.encode())
    found["prefix"] = secret[:max(8, len(secret) // 2)].lower()
    return found


def base64_cores(raw: bytes) -> dict[str, str]:
    """The base64 and base64url characters that encode these bytes at each alignment (lower case)."""
    found = {}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode().rstrip("=")
        core = encoded[-(-shift * 8 // 6):(shift + len(raw)) * 8 // 6]
        found[f"base64 shift {shift}"] = core.lower()
        found[f"base64url shift {shift}"] = core.translate(str.maketrans("+/", "-_")).lower()
    return found


class EchoVendor(BaseHTTPRequestHandler):
    """Answers every request with an echo of the secrets it received, in every spelling."""

    protocol_version = "HTTP/1.1"
    hits = 0

    def log_message(self, *args):
        pass

    def _received(self, body: bytes) -> tuple[list[str], list[str]]:
        """(the secrets received, the identifiers received as "name=value")."""
        found, ids = [], []
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            found.append(auth[7:])
        elif auth.startswith("Basic "):
            user, password = base64.b64decode(auth[6:]).decode().split(":", 1)
            found.append(password)
            ids.append(f"user={user}")
        for name, value in self.headers.items():
            if name.lower() in ("x-api-key", "token"):
                found.append(value)
        fields = dict(parse_qsl(urlsplit(self.path).query))
        try:
            fields.update(json.loads(body or b"{}"))
        except (ValueError, TypeError):
            fields.update(dict(parse_qsl(body.decode("latin-1"))))
        found += [str(v) for k, v in fields.items() if k in ("token", "password", "refresh_token", "Password")]
        found += [part for part in self.path.split("/") if part == WEBHOOK_TOKEN]
        ids += [f"{k}={v}" for k, v in fields.items() if k.lower() in ("username", "account_id", "accountid")]
        return [s for s in found if s], ids

    def _answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        EchoVendor.hits += 1
        secrets, ids = self._received(body)
        echoes = ids + [f"{name}={value}" for s in secrets for name, value in spellings(s).items()]
        status = (401, 400, 500, 200)[EchoVendor.hits % 4]
        text = f"{PLAIN_WORDS}; you sent: " + " | ".join(echoes)
        payload = json.dumps({"success": False, "ok": False, "error": text, "message": text,
                              "ResultMessage": text, "errors": [{"message": text}],
                              "req_id": "req-echo", "echo": echoes}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("WWW-Authenticate", f'Bearer error="invalid_token", {" ".join(echoes[:3])}')
        self.send_header("X-Echo", " ".join(echoes[3:6]))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


@pytest.fixture
def echo_vendor():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoVendor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def database_texts() -> dict[str, str]:
    """Every column of every row of every table, as text (bytes as hex): the whole database."""
    from django.db import connection

    texts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
            quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")  # noqa: S608 (names from the catalogue)
            for number, row in enumerate(cursor.fetchall()):
                texts[f"{table} row {number}"] = " ".join(
                    bytes(v).hex() if isinstance(v, bytes | memoryview) else str(v) for v in row)
    return texts


def stored_texts() -> dict[str, str]:
    texts = {}
    for row in RequestLog.objects.all():
        texts[f"log {row.pk}"] = " ".join(str(v) for v in (
            row.path, row.error_code, row.error_message, json.dumps(row.error_details), json.dumps(row.rate_limit),
            row.request_excerpt, row.response_excerpt, row.vendor_request_id, row.response_content_type))
    for c in Connection.with_archived.all():
        texts[f"connection {c.name}"] = " ".join((c.health_reason, c.paused_reason, json.dumps(c.last_test_result)))
    for a in RotationAttempt.objects.all():
        texts[f"rotation {a.pk}"] = " ".join((a.error, a.step, a.vendor_request_id))
    for e in AlertEvent.objects.all():
        texts[f"alert event {e.pk}"] = e.message
    for d in AlertDelivery.objects.all():
        texts[f"alert delivery {d.pk}"] = " ".join((d.subject, d.body, d.last_error))
    for e in AuditEvent.objects.all():
        texts[f"audit {e.pk}"] = " ".join((e.action, e.connection_name, json.dumps(e.details)))
    for cred in Credential.objects.all():
        texts[f"credential meta {cred.pk}"] = json.dumps(cred.meta)
    raw = cache._cache.get_client(write=False) if hasattr(cache, "_cache") else None
    if raw is not None:
        prefix = cache.key_prefix
        for key in raw.scan_iter(match=f"{prefix}:*"):
            value = raw.get(key)
            if isinstance(value, bytes):
                texts[f"cache {key.decode()}"] = value.decode("latin-1")
    return texts


def test_no_stored_text_holds_any_secret_in_any_encoding(echo_vendor, caplog, eager_celery, sleeps):
    caplog.set_level(logging.DEBUG)
    made = {p: factories.connection(p, name=f"echo-{p}", base_url=f"{echo_vendor}/{p}", secret=s)
            for p, s in SECRETS.items()}
    for connection in made.values():
        connection_test(connection=connection, actor=ACTOR)
        connection_call(connection=connection, method="POST", path="/anything", data={"token": "not-a-secret"},
                        actor=ACTOR)
    rotate(connection=made["cleanlist"], actor=ACTOR)  # the refresh is answered with an echo
    staged_replace(connection=made["clever"], secret=PASTED, actor=ACTOR)  # refused: the pasted token echoed
    channel = channel_create(name="echo-hook", kind="webhook", actor=ACTOR,
                             target=f"{echo_vendor}/hooks/T000/{WEBHOOK_TOKEN}")
    delivery = channel_test(channel=channel, actor=ACTOR)
    deliver(delivery.pk, final_attempt=True)
    assert EchoVendor.hits >= 12  # the twin answered every path above

    secrets = [s["token"] if "token" in s else s["password"] for s in SECRETS.values()]
    secrets += [PASTED["token"], WEBHOOK_TOKEN]
    texts = stored_texts()
    texts["the logs"] = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert any(name.startswith("cache ") for name in texts), "the cache was searched"
    hits = [f"{where}: {form} of {secret[:4]}…"
            for secret in secrets for form, needle in needles(secret).items()
            for where, text in texts.items() if needle in text.lower()]
    assert not hits, "\n".join(hits[:40])

    # Nothing else was masked: identifiers and ordinary words come through as they were sent.
    excerpts = " ".join(RequestLog.objects.values_list("response_excerpt", flat=True))
    assert PLAIN_WORDS in excerpts and "[REDACTED]" in excerpts
    joined = "\n".join(texts.values())
    for word in ("user=clover", "ops@switchboard.example", "10517", "/anything", "req-echo"):
        assert word in joined, word
