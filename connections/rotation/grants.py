"""Rotating refresh tokens (OAuth 2.0, RFC 9700 §4.14.2) on top of the rescind-on-refresh machine.

refresh.py already refreshes once per claim, journaled and spooled, and never retries; a
server that rotates refresh tokens and revokes the whole grant when a rotated one comes back
needs three more things, for any provider that declares them (providers/base.py hooks):

- refuse_spent(): a refresh token Switchboard already used (rotated, or refused as
  invalid_grant, or lost with the answer) is never sent again, even when an operator pastes it
  back: refused here, before anything leaves, and the connection needs attention.
- grant_refused(): invalid_grant means the grant is gone; refreshing again cannot help.
- renew_for_call(): a call that finds its access token expired renews it through rotate() (the
  same claim as the scheduler and `connections rotate`), or waits for the rotation in progress.
- staged_by_refresh(): a pasted refresh token can only be checked by using it: it is made
  active, refreshed under the claim (the new one is committed or spooled), and put back to the
  previous credential if the server refused it.
"""

from __future__ import annotations

import threading
import time

from django.db import transaction

from ..models import Connection, Credential, CredentialState, Health, RotationAttempt, RotationState
from ..services.audit import Actor, audit
from ..services.vault import active_credential, credential_activate, credential_add
from .core import (
    BUSY,
    RotationOutcome,
    journal_finish,
    journal_start,
    outcome_from,
    set_health,
    utc,
)

REPLAY_REFUSED = "replay_refused"  # not a journal state: the attempt is `failed`, step replay_refused
_local = threading.local()


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


# ---------------------------------------------------------------------------- on demand

WAIT_FOR_OTHER = 30.0  # seconds a call waits for another process's refresh of the same grant


def renew_for_call(*, connection: Connection, actor: Actor, task_id: str = "",
                   wait: float = WAIT_FOR_OTHER) -> tuple[Credential | None, str]:
    """Renew the access token of the connection's active credential for a call; (credential, "")
    or (None, why not). Registered with outbound.sessions at start-up (apps.py)."""
    from .refresh import rotate

    if getattr(_local, "renewing", False):
        return None, "its access token expired again during its own refresh; not refreshed twice"
    _local.renewing = True
    try:
        outcome = rotate(connection=connection, actor=actor, task_id=task_id)
    finally:
        _local.renewing = False
    if outcome.state == BUSY and not Connection.objects.filter(pk=connection.pk, rotation_claim__isnull=False).exists():
        return None, outcome.message  # not another refresh: a wait (e.g. a timed-out refresh may still land)
    if outcome.state == BUSY:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and Connection.objects.filter(
                pk=connection.pk, rotation_claim__isnull=False).exists():
            time.sleep(0.2)
        latest = connection.rotations.order_by("-started_at").first()
        if latest is not None and latest.state not in (RotationState.SUCCEEDED, RotationState.RECOVERED):
            return None, f"the refresh in progress did not succeed: {latest.error[:300] or latest.state}"
    elif not outcome.ok:
        return None, outcome.message
    credential = active_credential(connection)
    if credential is None:
        return None, "no active credential after the refresh"
    return credential, ""


# ---------------------------------------------------------------------------- a pasted refresh token


def staged_by_refresh(*, connection: Connection, secret: dict, actor: Actor, task_id: str = "") -> RotationOutcome:
    """Paste of a refresh token (the caller holds the claim): use it once, keep what it yields."""
    from .refresh import _rotate_claimed

    with transaction.atomic():
        row = Connection.objects.select_for_update().get(pk=connection.pk)
        health, reason = row.health, row.health_reason
        previous = active_credential(connection)
        pasted = credential_add(connection=connection, secret=secret, actor=actor, source="operator")
        credential_activate(credential=pasted)
        audit(actor=actor, action="secret.replace", connection=connection,
              details={"version": pasted.version, "fingerprint": pasted.fingerprint, "verify": "by refresh",
                       "previous_version": previous.version if previous else None})
    outcome = _rotate_claimed(connection=connection, actor=actor, task_id=task_id, attempt_id=None)
    if outcome.ok:
        outcome.message = f"The pasted refresh token (v{pasted.version}) worked. " + outcome.message
        return outcome
    if outcome.state not in (RotationState.FAILED, REPLAY_REFUSED):
        return outcome  # unknown: the pasted token stays active, the journal says what to do
    # Refused or not sent: nothing rotated. Put the previous credential back.
    with transaction.atomic():
        Connection.objects.select_for_update().get(pk=connection.pk)
        if previous is not None:
            credential_activate(credential=previous)
        Credential.objects.filter(pk=pasted.pk).update(state=CredentialState.REJECTED)
        set_health(connection.pk, health, reason)
    back = f"v{previous.version} is active again" if previous else "no credential is active"
    outcome.message = (f"The pasted refresh token (v{pasted.version}) was not accepted: {outcome.message} "
                       f"Nothing changed: {back}.")
    return outcome
