"""Rotating refresh tokens (OAuth 2.0, RFC 9700 §4.14.2) on top of the rescind-on-refresh machine.

refresh.py already refreshes once per claim, journaled and spooled, and never retries; a
server that rotates refresh tokens and revokes the whole grant when a rotated one comes back
needs three more things, for any provider that declares them (providers/base.py hooks):

- refuse_spent(): a refresh token Switchboard already used (rotated, or refused as
  invalid_grant, or lost with the answer) is never sent again, even when an operator pastes it
  back: refused here, before anything leaves, and the connection needs attention.
- grant_refused(): invalid_grant means the grant is gone; refreshing again cannot help.

renewal.py, above refresh.py, holds the two that start a refresh: renew_for_call() (a call whose
access token expired) and staged_by_refresh() (a pasted refresh token).
"""

from __future__ import annotations

from django.db import transaction

from ..models import Connection, Credential, CredentialState, Health, RotationAttempt, RotationState
from ..services.audit import Actor
from .core import (
    RotationOutcome,
    journal_finish,
    journal_start,
    outcome_from,
    set_health,
    utc,
)

REPLAY_REFUSED = "replay_refused"  # not a journal state: the attempt is `failed`, step replay_refused


def _advice(connection: Connection) -> str:
    provider = connection.provider_obj
    advice = provider.reauthorize_advice or (f"paste a new {provider.label} secret (`connections rotate "
                                             "{name} --stdin`)")
    return advice.format(name=connection.name)


def _spent_by(old: Credential) -> tuple[str, RotationAttempt | Credential] | None:
    fp = (old.meta or {}).get("refresh_fingerprint")
    if not fp:
        return None
    same = Credential.objects.filter(connection_id=old.connection_id, meta__refresh_fingerprint=fp).defer("secret")
    rotated = same.exclude(pk=old.pk).filter(state=CredentialState.RESCINDED).order_by("-retired_at").first()
    if rotated is not None:
        return "rotated", rotated
    dead = RotationAttempt.objects.filter(
        kind="refresh", old_credential__in=same.values("pk")).filter(
        step__in=("grant_refused", "probed_rejected", "probe_unavailable", "probe_inconclusive")).order_by(
        "-started_at").first()
    if dead is not None:
        return dead.step, dead
    return None


def refuse_spent(*, connection: Connection, old: Credential, actor: Actor) -> RotationOutcome | None:
    """None when the credential's refresh token may be sent; else the refusal (nothing sent)."""
    found = _spent_by(old)
    if found is None:
        return None
    why, where = found
    provider = connection.provider_obj
    if why == "rotated":
        history = (f"it was already used: the refresh at {utc(where.retired_at)} rotated it (credential "
                   f"v{where.version} was rescinded then)")
    elif why == "grant_refused":
        history = f"the authorization server refused it (invalid_grant) at {utc(where.started_at)}"
    else:
        history = f"the refresh at {utc(where.started_at)} sent it and lost its answer"
    message = (f"Refused before sending: this {provider.label} refresh token (v{old.version}) is spent: {history}. "
               "Presenting it again would be a replay, which servers that rotate refresh tokens answer by revoking "
               f"the whole grant. Nothing was sent. Action: {_advice(connection)}.")
    with transaction.atomic():
        attempt = journal_start(connection=connection, actor=actor, kind="refresh", old=old)
        journal_finish(attempt, state=RotationState.FAILED, actor=actor, step="replay_refused", error=message)
        set_health(connection.pk, Health.NEEDS_ATTENTION, message)
    outcome = outcome_from(attempt, message)
    outcome.state = REPLAY_REFUSED
    return outcome


def grant_refused(*, connection: Connection, attempt: RotationAttempt, actor: Actor, result,
                  what: str) -> RotationOutcome:
    """The server said invalid_grant: the refresh token is dead; say so and what to do."""
    provider = connection.provider_obj
    req = f" (request id {result.vendor_request_id})" if result.vendor_request_id else ""
    message = (f"{provider.label} refused the refresh{req}: {what}. The grant is gone; refreshing again cannot "
               f"help, so Switchboard will not send this refresh token again. Action: {_advice(connection)}.")
    with transaction.atomic():
        journal_finish(attempt, state=RotationState.FAILED, actor=actor, step="grant_refused", error=message)
        set_health(connection.pk, Health.NEEDS_ATTENTION, message)
    return outcome_from(attempt, message, error={"status": result.status_code, "code": result.error_code,
                                                 "message": result.error_message, "outcome": result.outcome})
