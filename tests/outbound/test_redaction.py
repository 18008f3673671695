"""Redaction that holds (issue 12 item 9): every encoding of a secret is masked, identifiers and
ordinary words are not, and oversized secrets are refused."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from django.core.exceptions import ValidationError

from connections.outbound.redaction import MASK, Redactor
from connections.providers import PROVIDERS

PASSWORD = "SzBuNQHM9JUUb7bO2s_KFu_y"
USER = "ops@switchboard.example"


def encodings(secret: str, user: str) -> dict[str, str]:
    return {
        "plain": secret, "upper": secret.upper(), "lower": secret.lower(),
        "hex": secret.encode().hex(), "HEX": secret.encode().hex().upper(),
        "json \\u": "".join(f"\\u{ord(c):04x}" for c in secret),
        "utf-16-le": secret.encode("utf-16-le").decode(), "utf-16-be": secret.encode("utf-16-be").decode(),
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64 user:secret": base64.b64encode(f"{user}:{secret}".encode()).decode(),
        "base64 inside JSON": base64.b64encode(json.dumps({"password": secret}).encode()).decode(),
        "percent": quote(secret, safe=""), "PERCENT all": "".join(f"%{b:02X}" for b in secret.encode()),
        "truncated": secret[:len(secret) // 2 + 1] + "…",
    }


@pytest.mark.parametrize("name", list(encodings(PASSWORD, USER)))
def test_every_encoding_is_masked(name):
    redact = Redactor([PASSWORD], [f"{USER}:{PASSWORD}"])
    echoed = encodings(PASSWORD, USER)[name]
    out = redact(f"vendor said: {echoed} (end)")
    assert MASK in out and echoed not in out
    assert PASSWORD[:8].lower() not in out.lower()


def test_identifiers_and_words_are_not_mangled():
    teletracker = PROVIDERS["teletracker"]
    secret = {"username": "clover", "password": "p", "account_id": "10517"}
    redact = Redactor(teletracker.secret_values(secret), teletracker.composite_values(secret))
    for text in ("empty body", "/clover/api/rest/v1/executions", "GET /reports?account_id=10517"):
        assert redact(text) == text
    assert redact("password: p") == f"password: {MASK}"  # a short secret, as a whole token


def test_oversized_secret_is_refused_with_a_clear_message():
    with pytest.raises(ValidationError) as exc:
        PROVIDERS["clever"].clean_secret({"token": "x" * (5 * 1024 * 1024)})
    assert "too long" in exc.value.message_dict["token"][0] and "16,384" in exc.value.message_dict["token"][0]
    assert PROVIDERS["clever"].clean_secret({"token": "x" * 16384})


@pytest.mark.django_db
def test_a_5_mb_secret_through_the_form_gets_a_clear_page_and_changes_nothing(admin_client_):
    """Larger than DATA_UPLOAD_MAX_MEMORY_SIZE: refused before any view (or CSRF) reads the form."""
    from connections.models import Connection
    from tests import factories

    connection = factories.connection("clever", secret={"token": "tok-before-the-flood"})
    response = admin_client_.post(f"/connections/{connection.name}/secret/",
                                  {"token": "x" * (5 * 1024 * 1024), "unverified": "1"})
    html = response.content.decode()
    assert response.status_code == 413
    assert "Secret too large" in html and "Nothing was stored or changed" in html and "16,384 bytes" in html
    assert [c.state for c in Connection.objects.get(pk=connection.pk).credentials.all()] == ["active"]
