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
from functools import cache

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from ..models import ApplicationKey, Connection, Credential, CredentialState
from ..models.rows import Columns, columns
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


APP_FIELDS = ("id", "name", "key_hash", "methods", "last_used_at")


@cache
def _grant_query() -> tuple[str, Columns, Columns, Columns]:
    """The statement of authorize() and how to read its row (credential, connection and application
    columns), built once per process: the ORM would build this three-table join and look up each
    field's converters again on every proxied call."""
    cred, conn, app = Credential._meta, Connection._meta, ApplicationKey._meta
    field = ApplicationKey.connections.field
    through = field.remote_field.through._meta.db_table
    cred_fields, conn_fields = list(cred.concrete_fields), list(conn.concrete_fields)
    app_fields = [app.get_field(n) for n in APP_FIELDS]
    selected = ", ".join([f'c."{f.column}"' for f in cred_fields] + [f'o."{f.column}"' for f in conn_fields]
                        + [f'a."{f.column}"' for f in app_fields])
    sql = (f'SELECT {selected} FROM "{conn.db_table}" o '
           f'JOIN "{through}" t ON t."{field.m2m_reverse_name()}" = o."id" '
           f'JOIN "{app.db_table}" a ON a."id" = t."{field.m2m_column_name()}" '
           f'LEFT JOIN "{cred.db_table}" c ON c."connection_id" = o."id" AND c."state" = %s '
           f'WHERE o."name" = %s AND a."key_id" = %s AND a."revoked_at" IS NULL LIMIT 1')
    db = connections[DEFAULT_DB_ALIAS]
    n_cred, n_conn = len(cred_fields), len(conn_fields)
    return (sql, columns(db, cred_fields, 0), columns(db, conn_fields, n_cred),
            columns(db, app_fields, n_cred + n_conn))


def authorize(header: str, connection_name: str) -> Grant:
    """The key, its scope and the connection's active credential, in one query on the usual path
    (a key in scope, with or without a credential); the key's hash compared in constant time."""
    parsed = _parse(header)
    if parsed is None:
        return Grant()
    sql, cred_cols, conn_cols, app_cols = _grant_query()
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(sql, [CredentialState.ACTIVE, connection_name, parsed[0]])
        row = cursor.fetchone()
    if row is not None:
        app_pk, app_name, app_hash, app_methods, app_last_used = app_cols.values(db, row)
        if not hmac.compare_digest(app_hash, hash_key(parsed[1])):
            return Grant()
        connection = conn_cols.instance(Connection, db, row)
        credential = None
        if row[0] is not None:  # the LEFT JOIN found the active credential
            credential = cred_cols.instance(Credential, db, row)
            Credential.connection.field.set_cached_value(credential, connection)
        app = ApplicationKey(pk=app_pk, name=app_name, key_id=parsed[0], key_hash=app_hash,
                             methods=app_methods, last_used_at=app_last_used)
        return Grant(app, connection, credential)
    # The slow path: tell a bad key from a connection out of scope.
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
