"""Connections and their credentials: create, update, replace the secret, import (archive: archive.py).

Secrets arrive as plain dicts, are validated against the provider's schema, and are
stored encrypted as a new Credential version; the previous active one is retired.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.debug import sensitive_variables

from ..crypto import fingerprint
from ..models import Connection, Credential, CredentialState
from ..outbound import guard
from ..providers import UnknownProvider, get_provider
from ..providers.schema import error_messages, error_text
from ..selectors.vault import HOST_CHANGED
from .audit import Actor, audit

NAME_MAX = 64
# Names that would collide with pages under /connections/.
RESERVED_NAMES = {"new"}


def clean_definition(*, name: str, provider: str, base_url: str | None, options: dict | None,
                     test_interval: int | None = None, refresh_interval: int | None = None,
                     existing: Connection | None = None) -> dict:
    """Validate a connection's non-secret definition; raise ValidationError naming each bad field."""
    errors: dict[str, str] = {}
    cleaned: dict = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "this field is required"
    elif slugify(name) != name or len(name) > NAME_MAX:
        errors["name"] = f"use lowercase letters, digits and hyphens only (at most {NAME_MAX}), e.g. {slugify(name)[:NAME_MAX] or 'clever-prod'}"
    elif name in RESERVED_NAMES:
        errors["name"] = f"{name!r} is reserved; choose another name"
    elif (taken := Connection.with_archived.filter(name=name).exclude(pk=existing.pk if existing else None)
          .only("archived_at").first()) is not None:
        errors["name"] = (f"an archived connection keeps the name {name!r} (its history is filed under it); "
                          "choose another name" if taken.archived_at else f"a connection named {name!r} already exists")
    cleaned["name"] = name
    try:
        prov = get_provider(provider)
    except UnknownProvider as exc:
        errors["provider"] = str(exc)
        raise ValidationError(errors) from None
    cleaned["provider"] = provider
    try:
        cleaned["base_url"] = prov.clean_base_url(base_url or prov.default_base_url)
        # The outbound guard's check, now rather than at the first request (DESIGN.md, "Outbound safety").
        problem = guard.saved_url_problem(cleaned["base_url"])
        if problem:
            errors["base_url"] = problem
    except ValidationError as exc:
        errors.update(error_messages(exc))
    try:
        cleaned["options"] = prov.clean_options(options or {})
    except ValidationError as exc:
        errors.update({f"option {k}" if k != "__all__" else "options": v for k, v in error_messages(exc).items()})
    for option_name in prov.url_options:  # e.g. oauth2's token endpoint: the same egress rules
        value = (cleaned.get("options") or {}).get(option_name)
        problem = guard.saved_url_problem(value) if value else ""
        if problem:
            errors[f"option {option_name}"] = problem
    for field_name, value in (("test_interval", test_interval), ("refresh_interval", refresh_interval)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            errors[field_name] = "must be a whole number of seconds, 0 or more"
        elif field_name == "test_interval" and 0 < value < 30:
            errors[field_name] = "must be 0 (off) or at least 30 seconds"
        else:
            cleaned[field_name] = value
    if errors:
        raise ValidationError(errors)
    return cleaned


def _next_version(connection: Connection) -> int:
    return (connection.credentials.aggregate(v=Max("version"))["v"] or 0) + 1


@sensitive_variables("secret", "secret_clean")
def credential_add(*, connection: Connection, secret: dict, actor: Actor, state: str = CredentialState.STAGED,
                   source: str = "operator", meta: dict | None = None) -> Credential:
    """Store a new credential version (already validated). Must run inside a transaction.

    The secret is bound to the connection's origin (scheme, host, port) as it is now: the client
    never sends it anywhere else (docs/security.md, "Secrets are bound to their host")."""
    return Credential.objects.create(
        connection=connection,
        version=_next_version(connection),
        secret=secret,
        state=state,
        fingerprint=fingerprint(secret),
        source=source,
        created_by=actor.user,
        created_by_label=actor.label,
        activated_at=timezone.now() if state == CredentialState.ACTIVE else None,
        meta={**connection.provider_obj.credential_meta(secret), **(meta or {}),
              "origin": guard.origin(connection.base_url), "also_origins": _also_origins(connection)},
    )


def _also_origins(connection: Connection) -> list[str]:
    """Origins besides the base URL's that this connection's secret goes to (oauth2's token URL)."""
    main = guard.origin(connection.base_url)
    urls = connection.provider_obj.secret_urls(connection.base_url, connection.effective_options())
    return sorted({guard.origin(u) for u in urls} - {main, ""})


def credential_activate(*, credential: Credential) -> Credential:
    """Promote a credential to active and retire the previous one, in one transaction.

    The partial unique constraint guarantees at most one active credential even
    when two processes race here: the loser gets IntegrityError and changes nothing.
    """
    with transaction.atomic():
        now = timezone.now()
        Credential.objects.active().filter(connection_id=credential.connection_id).exclude(
            pk=credential.pk
        ).update(state=CredentialState.RETIRED, retired_at=now)
        credential.state = CredentialState.ACTIVE
        credential.activated_at = now
        credential.save(update_fields=["state", "activated_at"])
        # A new secret lifts the account-lockout pause on scheduled tests.
        Connection.objects.filter(pk=credential.connection_id, tests_paused=True).update(
            tests_paused=False, paused_reason="", paused_at=None
        )
    return credential


def active_credential(connection: Connection) -> Credential | None:
    return connection.credentials.active().first()


@sensitive_variables("secret", "secret_clean")
def connection_create(*, name: str, provider: str, base_url: str | None, secret: object, actor: Actor,
                      options: dict | None = None, test_interval: int | None = None,
                      refresh_interval: int | None = None, enabled: bool = True) -> Connection:
    cleaned = clean_definition(name=name, provider=provider, base_url=base_url, options=options,
                               test_interval=test_interval, refresh_interval=refresh_interval)
    prov = get_provider(provider)
    secret_clean = prov.clean_secret(secret)
    try:
        with transaction.atomic():
            connection = Connection.objects.create(enabled=enabled, created_by=actor.user, **cleaned)
            credential = credential_add(connection=connection, secret=secret_clean, actor=actor,
                                        state=CredentialState.ACTIVE)
            audit(actor=actor, action="connection.create", connection=connection,
                  details={"provider": provider, "base_url": connection.base_url,
                           "credential_version": credential.version, "fingerprint": credential.fingerprint})
    except IntegrityError:
        raise ValidationError({"name": f"a connection named {name!r} already exists"}) from None
    _after_definition_change(connection)
    return connection


def connection_update(*, connection: Connection, actor: Actor, base_url: str | None = None,
                      options: dict | None = None, test_interval: int | None = None,
                      refresh_interval: int | None = None, enabled: bool | None = None) -> Connection:
    cleaned = clean_definition(
        name=connection.name, provider=connection.provider,
        base_url=base_url if base_url is not None else connection.base_url,
        options=options if options is not None else connection.options,
        test_interval=test_interval, refresh_interval=refresh_interval, existing=connection,
    )
    changes = {}
    for field_name in ("base_url", "options", "test_interval", "refresh_interval"):
        if field_name in cleaned and getattr(connection, field_name) != cleaned[field_name]:
            changes[field_name] = {"from": getattr(connection, field_name), "to": cleaned[field_name]}
            setattr(connection, field_name, cleaned[field_name])
    if enabled is not None and enabled != connection.enabled:
        changes["enabled"] = {"from": connection.enabled, "to": enabled}
        connection.enabled = enabled
    if changes:
        with transaction.atomic():
            connection.save()
            audit(actor=actor, action="connection.update", connection=connection, details={"changes": changes})
            if "base_url" in changes:
                _unbind_secrets(connection, actor, old_url=changes["base_url"]["from"])
            elif "options" in changes:
                _unbind_for_options(connection, actor, old_options=changes["options"]["from"])
        _after_definition_change(connection)
    return connection




def _unbind_secrets(connection: Connection, actor: Actor, *, old_url: str, force: bool = False) -> list[Credential]:
    """A new scheme, host or port: retire every live secret of the connection (active and staged),
    so none of them ever reaches the new origin; the admin enters the secret again. A path-only
    change keeps them. Runs inside connection_update's transaction."""
    old, new = guard.origin(old_url), guard.origin(connection.base_url)
    if old == new and not force:
        return []
    live = list(connection.credentials.select_for_update().defer("secret")
                .filter(state__in=[CredentialState.ACTIVE, CredentialState.STAGED]))
    now = timezone.now()
    for credential in live:
        credential.meta = {**credential.meta, "retired_because": HOST_CHANGED, "retired_for_origin": new}
        credential.state, credential.retired_at = CredentialState.RETIRED, now
        credential.save(update_fields=["state", "retired_at", "meta"])
    if live:
        audit(actor=actor, action="secret.retire_host_changed", connection=connection,
              details={"from": old, "to": new,
                       "retired": [{"version": c.version, "fingerprint": c.fingerprint} for c in live]})
    return live


def _unbind_for_options(connection: Connection, actor: Actor, *, old_options: dict) -> list[Credential]:
    """An option the secret is sent to (oauth2's token_url) moved to another origin: retire the
    live secrets, as for a new base URL host."""
    provider = connection.provider_obj
    before = {guard.origin(u) for u in provider.secret_urls(connection.base_url,
                                                            {**provider.default_options(), **(old_options or {})})}
    if before == {guard.origin(u) for u in provider.secret_urls(connection.base_url, connection.effective_options())}:
        return []
    return _unbind_secrets(connection, actor, old_url=connection.base_url, force=True)


@sensitive_variables("secret", "secret_clean")
def secret_replace(*, connection: Connection, secret: object, actor: Actor) -> Credential:
    """Store a new secret version as active and retire the previous one (no verification).

    Verified replacement (staged, tested, then promoted) is connections.rotation.staged_replace.
    """
    secret_clean = connection.provider_obj.clean_secret(secret)
    with transaction.atomic():
        Connection.objects.select_for_update().get(pk=connection.pk)
        previous = active_credential(connection)
        credential = credential_add(connection=connection, secret=secret_clean, actor=actor)
        credential_activate(credential=credential)
        audit(actor=actor, action="secret.replace", connection=connection,
              details={"version": credential.version, "fingerprint": credential.fingerprint,
                       "previous_version": previous.version if previous else None,
                       "previous_fingerprint": previous.fingerprint if previous else ""})
    return credential


EXPORT_FIELDS = ("name", "provider", "base_url", "options", "enabled", "test_interval", "refresh_interval")
EXPORT_FORMAT = 1


def connection_definitions() -> dict:
    """Every connection's definition, never a secret (for `connections export`)."""
    return {
        "format": EXPORT_FORMAT,
        "connections": [
            {f: getattr(c, f) for f in EXPORT_FIELDS} for c in Connection.objects.order_by("name")
        ],
    }


def connections_import(*, data: object, actor: Actor) -> list[Connection]:
    """Create connections from an export. Validates every entry first; writes all or nothing.

    Imported connections have no secret: exports never carry one.
    """
    if not isinstance(data, dict) or not isinstance(data.get("connections"), list):
        raise ValidationError({"file": 'expected {"format": 1, "connections": [...]} as written by `connections export`'})
    if data.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        raise ValidationError({"format": f"unsupported export format {data.get('format')!r} (expected {EXPORT_FORMAT})"})
    errors: dict[str, str] = {}
    cleaned_all: list[tuple[dict, bool]] = []
    seen: set[str] = set()
    for position, entry in enumerate(data["connections"], start=1):
        label = f"entry {position}" + (f" ({entry.get('name')})" if isinstance(entry, dict) and entry.get("name") else "")
        if not isinstance(entry, dict):
            errors[label] = "must be an object"
            continue
        unknown = set(entry) - set(EXPORT_FIELDS) - {"secret"}
        if "secret" in entry or unknown:
            errors[label] = ("exports carry no secrets; remove the 'secret' key" if "secret" in entry
                             else f"unknown keys: {', '.join(sorted(unknown))}")
            continue
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            errors[label] = "enabled: must be true or false"
            continue
        try:
            cleaned = clean_definition(
                name=entry.get("name", ""), provider=entry.get("provider", ""), base_url=entry.get("base_url"),
                options=entry.get("options") or {}, test_interval=entry.get("test_interval"),
                refresh_interval=entry.get("refresh_interval"),
            )
        except ValidationError as exc:
            errors[label] = error_text(exc)
            continue
        if cleaned["name"] in seen:
            errors[label] = f"name {cleaned['name']!r} appears twice in the file"
            continue
        seen.add(cleaned["name"])
        cleaned_all.append((cleaned, enabled))
    if errors:
        raise ValidationError(errors)
    created = []
    try:
        with transaction.atomic():
            for cleaned, enabled in cleaned_all:
                connection = Connection.objects.create(enabled=enabled, created_by=actor.user, **cleaned)
                audit(actor=actor, action="connection.import", connection=connection,
                      details={"provider": connection.provider, "base_url": connection.base_url})
                created.append(connection)
    except IntegrityError:
        raise ValidationError({"name": "a connection with one of these names was created meanwhile"}) from None
    for connection in created:
        _after_definition_change(connection)
    return created


def _after_definition_change(connection: Connection) -> None:
    """Keep the beat schedule in step with the connection (scheduling lives in tasks.py)."""
    from .. import scheduling

    transaction.on_commit(lambda: scheduling.sync_connection_schedule(connection.pk))
