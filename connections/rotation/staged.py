"""Staged replacement: an operator's new secret is stored staged, verified, then promoted.

    clean the secret (bad input: ValidationError, nothing stored)
    claim (the same claim a refresh takes: a paste never races a refresh)
    store the secret as a `staged` credential + journal row `started` (one commit)
    the provider's connection test WITH THE STAGED credential (the active one is not touched)
      passes -> promote in one transaction (credential_activate: the old one is retired) -> `succeeded`
      fails  -> the staged credential is `rejected` (kept, so the history shows what was tried, by
                fingerprint), the old one stays active and untouched -> `failed` with the vendor's error
    (promoted after a lost refresh whose probe found the old secret rejected: the old one is
    `rescinded`, not `retired`, so nobody tries it again)
    release the claim

Used for every vendor without a refresh, and for a Cleanlist token pasted by an operator
(e.g. one support issued after a lost refresh).
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, transaction
from django.utils import timezone

from ..models import Connection, Credential, CredentialState, RotationAttempt, RotationState
from ..services.audit import Actor
from ..services.testing import send_test
from ..services.vault import active_credential, credential_activate, credential_add
from .core import (
    busy_outcome,
    checkpoint,
    claim_connection,
    clear_rotation_attention,
    journal_finish,
    journal_start,
    outcome_from,
    release_claim,
    utc,
)
from .reconcile import settle_attempt

log = logging.getLogger(__name__)


def staged_replace(*, connection: Connection, secret: object, actor: Actor, task_id: str = ""):
    """Verify a new secret before it replaces the active one. Raises ValidationError for malformed input."""
    provider = connection.provider_obj
    secret_clean = provider.clean_secret(secret)
    claim = claim_connection(connection.pk)
    if claim is None:
        return busy_outcome(connection, "staged")
    try:
        return _staged_claimed(connection, provider, secret_clean, actor, task_id)
    finally:
        try:
            release_claim(connection.pk, claim)
        except DatabaseError:
            log.exception("could not release the rotation claim of %s", connection.name)


def _staged_claimed(connection, provider, secret_clean, actor, task_id):
    for stale in connection.rotations.unsettled():
        settle_attempt(stale, actor=actor, task_id=task_id)
    if provider.verifies_by_refresh(secret_clean):
        # A refresh token without an access token can only be checked by using it (rotation/grants.py).
        from .grants import staged_by_refresh

        return staged_by_refresh(connection=connection, secret=secret_clean, actor=actor, task_id=task_id)
    with transaction.atomic():
        Connection.objects.select_for_update().get(pk=connection.pk)
        old = active_credential(connection)
        staged = credential_add(connection=connection, secret=secret_clean, actor=actor,
                                state=CredentialState.STAGED, source="operator")
        attempt = journal_start(connection=connection, actor=actor, kind="staged", old=old, new=staged)
    staged = Credential.objects.get(pk=staged.pk)  # sealed, as the client expects
    checkpoint("staged")

    options = connection.effective_options()
    try:
        result = send_test(connection, options, actor=actor, credential=staged, task_id=task_id)
    except Exception as exc:
        log.exception("verifying a staged secret of %s failed", connection.name)
        return _reject(attempt, staged, actor, f"The verification could not run ({exc.__class__.__name__}: {exc}).",
                       {"message": str(exc)})
    proves = provider.describe_test(options)
    if not result.ok:
        req = f", request id {result.vendor_request_id}" if result.vendor_request_id else ""
        why = (f"HTTP {result.status_code}" if result.status_code else result.outcome) + (
            f" {result.error_code}" if result.error_code else "") + (
            f": {result.error_message}" if result.error_message else "") + req
        return _reject(attempt, staged, actor, f"{provider.label} did not accept the new secret ({why}).",
                       {"status": result.status_code, "code": result.error_code, "message": result.error_message,
                        "outcome": result.outcome}, vendor_request_id=result.vendor_request_id or "")
    with transaction.atomic():
        Connection.objects.select_for_update().get(pk=connection.pk)
        credential_activate(credential=staged)
        gone = old is not None and _rescinded_by_vendor(old)
        if gone:
            Credential.objects.filter(pk=old.pk).update(state=CredentialState.RESCINDED)
        message = (f"Replaced: v{staged.version} (fingerprint {staged.fingerprint}) is active"
                   + (f"; v{old.version} is {'rescinded (the vendor had already rejected it)' if gone else 'retired'}."
                      if old else ".") + f" Verified — {proves}")
        journal_finish(attempt, state=RotationState.SUCCEEDED, actor=actor, step="promoted",
                       vendor_request_id=(result.vendor_request_id or "")[:200], error="")
        clear_rotation_attention(connection.pk, f"A verified secret was stored at {utc(timezone.now())}.")
    attempt.new_credential = staged
    return outcome_from(attempt, message, verified=True, verification=f"Test passed: {proves}")


def _rescinded_by_vendor(credential: Credential) -> bool:
    """Did a refresh with this credential end with the vendor rejecting it (a lost answer, probed)?"""
    return RotationAttempt.objects.lost_refreshes(credential).filter(step="probed_rejected").exists()


def _reject(attempt, staged: Credential, actor: Actor, why: str, error: dict, vendor_request_id: str = ""):
    message = f"{why} Nothing changed: the current secret is still active; the new one was not stored as active."
    with transaction.atomic():
        Credential.objects.filter(pk=staged.pk, state=CredentialState.STAGED).update(
            state=CredentialState.REJECTED, retired_at=timezone.now())
        journal_finish(attempt, state=RotationState.FAILED, actor=actor, step="verify_failed", error=message,
                       vendor_request_id=vendor_request_id[:200])
    return outcome_from(attempt, message, verified=False, verification=why, error=error)
