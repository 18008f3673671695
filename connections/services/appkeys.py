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

from ..commits import fast_commit
from ..models import ApplicationKey, Connection
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
        raise ValidationError({"name": f"an application named {name!r} exists already"}, code="exists")
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


def authenticate(header: str) -> ApplicationKey | None:
    """The live application whose key `Authorization: Bearer <key>` carries, or None."""
    scheme, _, key = (header or "").partition(" ")
    match = KEY_RE.match(key.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        return None
    app = ApplicationKey.objects.filter(key_id=match.group(1), revoked_at__isnull=True).first()
    if app is None or not hmac.compare_digest(app.key_hash, hash_key(key.strip())):
        return None
    return app


def count_use(*, app: ApplicationKey, refused: bool = False) -> None:
    """One call (or one refusal) on the application's counters; the commit skips the fsync."""
    field = "refused_count" if refused else "call_count"
    with fast_commit():
        ApplicationKey.objects.filter(pk=app.pk).update(**{field: F(field) + 1, "last_used_at": timezone.now()})
