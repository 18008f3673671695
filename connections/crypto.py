"""Secrets at rest: MultiFernet over CREDENTIAL_KEYS (newest first).

A credential's secret is one JSON object encrypted as one Fernet token. The model
field hands out a `Sealed` value, never plaintext: code that needs the secret calls
`.reveal()` at the moment it sends a request, so a page, a log line or a repr can
never show it by accident.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class SecretUnavailable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernets(keys: tuple[str, ...]) -> tuple[Fernet, ...]:
    if not keys:
        raise ImproperlyConfigured(
            "CREDENTIAL_KEYS is not set: give one or more Fernet keys, newest first "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        )
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip().encode()))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"CREDENTIAL_KEYS is malformed: key {position} of {len(keys)} is not a 32-byte url-safe base64 Fernet key"
            ) from None
    return tuple(fernets)


def configured_keys() -> tuple[str, ...]:
    return tuple(k for k in settings.CREDENTIAL_KEYS if k.strip())


def check_keys() -> None:
    """Raise ImproperlyConfigured unless CREDENTIAL_KEYS holds at least one valid key."""
    _fernets(configured_keys())


def multifernet() -> MultiFernet:
    return MultiFernet(list(_fernets(configured_keys())))


def newest_fernet() -> Fernet:
    return _fernets(configured_keys())[0]


def encrypt_bytes(data: bytes) -> str:
    return multifernet().encrypt(data).decode()


def decrypt_bytes(token: str) -> bytes:
    return multifernet().decrypt(token.encode())


def encrypt_json(data: dict) -> str:
    return encrypt_bytes(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())


def needs_rekey(token: str) -> bool:
    """True when the newest key cannot decrypt this token (it depends on an older key, or on none)."""
    try:
        newest_fernet().decrypt(token.encode())
    except InvalidToken:
        return True
    return False


def rekey(token: str) -> str:
    """Re-encrypt a token with the newest key. Raises InvalidToken when no key can read it."""
    return multifernet().rotate(token.encode()).decode()


def _fingerprint_key() -> bytes:
    return hashlib.sha256(b"switchboard-fingerprint\x00" + settings.SECRET_KEY.encode()).digest()


def fingerprint(secret: dict) -> str:
    """A short keyed hash of a secret: identifies it (equal secrets, equal prints) without revealing it."""
    canonical = json.dumps(secret, sort_keys=True, separators=(",", ":")).encode()
    digest = hmac.new(_fingerprint_key(), canonical, hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()


def recovery_code_digest(code: str) -> str:
    """What is stored for a second-factor recovery code (django-otp's StaticToken.token, 16
    characters): a keyed hash (HMAC-SHA256 under a key derived from SECRET_KEY), 96 bits in url-safe
    base64. A typed code is hashed the same way and looked up; the code itself is never stored."""
    key = hashlib.sha256(b"switchboard-recovery-code\x00" + settings.SECRET_KEY.encode()).digest()
    digest = hmac.new(key, code.strip().replace(" ", "").lower().encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


class Sealed:
    """An encrypted secret as loaded from the database. str() and repr() never show plaintext."""

    __slots__ = ("token", "label")

    def __init__(self, token: str, label: str = "secret"):
        self.token = token
        self.label = label

    def reveal(self) -> dict:
        try:
            return json.loads(decrypt_bytes(self.token))
        except InvalidToken:
            raise SecretUnavailable(
                f"the {self.label} cannot be decrypted with any key in CREDENTIAL_KEYS "
                "(was the key that encrypted it removed before `manage.py rotate_keys` ran?)"
            ) from None

    def __repr__(self) -> str:
        return "<Sealed secret>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


class EncryptedJSONField(models.TextField):
    """Stores a JSON object as a Fernet token. Assign a dict (encrypted on save) or a Sealed value."""

    description = "A JSON object encrypted with MultiFernet"

    def from_db_value(self, value, expression, connection):
        return None if value is None else Sealed(value)

    def to_python(self, value):
        if value is None or isinstance(value, Sealed):
            return value
        if isinstance(value, dict):
            return Sealed(encrypt_json(value))
        return Sealed(str(value))

    def get_prep_value(self, value):
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.token
        if isinstance(value, dict):
            return encrypt_json(value)
        raise TypeError("EncryptedJSONField takes a dict or a Sealed value")

    def value_to_string(self, obj):
        # dumpdata/serialisation: the ciphertext only.
        value = self.value_from_object(obj)
        return None if value is None else self.get_prep_value(value)
