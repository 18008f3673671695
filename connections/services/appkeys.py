"""Application keys for the egress proxy (connections/proxy/): create, scope, rotate, revoke.

A key is `sbk_<key id>_<secret>`: the key id (public, unique) finds the row, the SHA-256 of the
whole key is compared in constant time. The plaintext is returned once, by create and rotate,
and stored nowhere. Every change is audited (appkey.create, appkey.scope, appkey.rotate,
appkey.revoke), never with the key; writes are keyword-only and raise ValidationError.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import ApplicationKey, Connection, Credential, CredentialState
from ..outbound.commits import fast_commit
from .audit import Actor, audit

KEY_PREFIX = "sbk_"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# sbk_ + 12 lower-case alphanumerics (key id) + _ + 43 url-safe characters (256 bits).
KEY_RE = re.compile(r"^sbk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class IssuedKey:
    """A key just made: `key` is shown once and never again."""

    application: ApplicationKey
    key: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key() -> tuple[str, str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    key_id = "".join(secrets.choice(alphabet) for _ in range(12))
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_methods(methods) -> list[str]:
    """["GET", "POST"] from "GET,post" or a list; [] means any method. ValidationError if unknown."""
    if isinstance(methods, str):
        methods = [m for m in methods.split(",")]
    cleaned = sorted({m.strip().upper() for m in methods or [] if m.strip()})
    unknown = [m for m in cleaned if m not in METHODS]
    if unknown:
        raise ValidationError({"methods": f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}"},
                              code="bad_input")
    return cleaned


def _connections(names) -> list[Connection]:
    if isinstance(names, str):
        names = names.split(",")
    wanted = sorted({n.strip() for n in names or [] if n.strip()})
    if not wanted:
        raise ValidationError({"connections": "name at least one connection the application may call"},
                              code="bad_input")
    found = list(Connection.objects.filter(name__in=wanted))
    missing = sorted(set(wanted) - {c.name for c in found})
    if missing:
        raise ValidationError({"connections": f"no connection named {', '.join(missing)}"}, code="bad_input")
    return found


def _get(name: str, *, for_update: bool = False) -> ApplicationKey:
    qs = ApplicationKey.objects.select_for_update() if for_update else ApplicationKey.objects
    app = qs.filter(name=name).first()
    if app is None:
        raise ValidationError(f"no application named {name!r}", code="not_found")
    return app


@transaction.atomic
def create_key(*, name: str, connections, methods=(), actor: Actor) -> IssuedKey:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ValidationError({"name": "use lower-case letters, digits, - and _ (at most 64, e.g. billing-app)"},
                              code="bad_input")
    scope = _connections(connections)
    allowed = parse_methods(methods)
    if ApplicationKey.objects.filter(name=name).exists():
        raise ValidationError({"name": ValidationError(f"an application named {name!r} exists already",
                                                       code="exists")})
    key_id, key = _new_key()
    app = ApplicationKey.objects.create(name=name, key_id=key_id, key_hash=hash_key(key), methods=allowed,
                                        created_by=actor.user, created_by_label=actor.label)
    app.connections.set(scope)
    audit(actor=actor, action="appkey.create",
          details={"application": name, "key": app.prefix, "connections": [c.name for c in scope],
                   "methods": allowed or ["any"]})
    return IssuedKey(app, key)


@transaction.atomic
def set_scope(*, name: str, connections, methods=(), actor: Actor) -> ApplicationKey:
    app = _get(name, for_update=True)
    scope = _connections(connections)
    allowed = parse_methods(methods)
    app.methods = allowed
    app.save(update_fields=["methods"])
    app.connections.set(scope)
    audit(actor=actor, action="appkey.scope",
          details={"application": name, "connections": [c.name for c in scope], "methods": allowed or ["any"]})
    return app


@transaction.atomic
def rotate_key(*, name: str, actor: Actor) -> IssuedKey:
    """A new key for the application; the old one stops working at once."""
    app = _get(name, for_update=True)
    if app.revoked_at is not None:
        raise ValidationError(f"application {name!r} is revoked; create a new one", code="revoked")
    old = app.prefix
    app.key_id, key = _new_key()
    app.key_hash = hash_key(key)
    app.rotated_at = timezone.now()
    app.save(update_fields=["key_id", "key_hash", "rotated_at"])
    audit(actor=actor, action="appkey.rotate", details={"application": name, "old_key": old, "key": app.prefix})
    return IssuedKey(app, key)


@transaction.atomic
def revoke_key(*, name: str, actor: Actor) -> ApplicationKey:
    app = _get(name, for_update=True)
    if app.revoked_at is not None:
        return app  # nothing to change
    app.revoked_at = timezone.now()
    app.save(update_fields=["revoked_at"])
    audit(actor=actor, action="appkey.revoke", details={"application": name, "key": app.prefix})
    return app


def _parse(header: str) -> tuple[str, str] | None:
    scheme, _, key = (header or "").partition(" ")
    key = key.strip()
    match = KEY_RE.match(key) if scheme.lower() == "bearer" else None
    return (match.group(1), key) if match else None


def authenticate(header: str) -> ApplicationKey | None:
    """The live application whose key `Authorization: Bearer <key>` carries, or None."""
    parsed = _parse(header)
    if parsed is None:
        return None
    app = ApplicationKey.objects.filter(key_id=parsed[0], revoked_at__isnull=True).first()
    if app is None or not hmac.compare_digest(app.key_hash, hash_key(parsed[1])):
        return None
    return app


@dataclass(frozen=True)
class Grant:
    """What the proxy needs to send a call: the application (None: 401), the connection (None:
    not in its scope, 403) and the connection's active credential (None: none stored)."""

    application: ApplicationKey | None = None
    connection: Connection | None = None
    credential: Credential | None = None


def authorize(header: str, connection_name: str) -> Grant:
    """The key, its scope and the connection's active credential, in one query on the usual path."""
    parsed = _parse(header)
    if parsed is None:
        return Grant()
    prefix = "connection__application_keys__"
    row = (Credential.objects.filter(connection__name=connection_name, state=CredentialState.ACTIVE,
                                     **{f"{prefix}key_id": parsed[0], f"{prefix}revoked_at__isnull": True})
           .select_related("connection")
           .annotate(app_pk=F(f"{prefix}id"), app_name=F(f"{prefix}name"), app_hash=F(f"{prefix}key_hash"),
                     app_methods=F(f"{prefix}methods"), app_last_used=F(f"{prefix}last_used_at"))[:1])
    row = next(iter(row), None)
    if row is not None:
        if not hmac.compare_digest(row.app_hash, hash_key(parsed[1])):
            return Grant()
        app = ApplicationKey(pk=row.app_pk, name=row.app_name, key_id=parsed[0], key_hash=row.app_hash,
                             methods=row.app_methods, last_used_at=row.app_last_used)
        return Grant(app, row.connection, row)
    # The slow path: tell a bad key from a connection out of scope or without a credential.
    app = authenticate(header)
    if app is None:
        return Grant()
    return Grant(app, Connection.objects.filter(name=connection_name, application_keys=app).first())


USE_WRITE_EVERY = 60  # seconds: last_used_at is a minute exact, and costs one write a minute


def note_use(*, app: ApplicationKey) -> None:
    """Record that the application called (at most one write a minute; call counts come from the
    request log, which has a row per call with the application's name)."""
    now = timezone.now()
    if app.last_used_at is None or (now - app.last_used_at).total_seconds() >= USE_WRITE_EVERY:
        with fast_commit():
            ApplicationKey.objects.filter(pk=app.pk).update(last_used_at=now)
