"""Rescind-on-refresh rotation (Cleanlist's _refresh, TeleTracker's /auth/refresh).

The vendor invalidates the old secret the moment it answers, so the state machine never
retries the refresh blindly and never lets the new secret live only in memory:

    claim (CAS, commits) -> journal row `started` (commits) -> ONE refresh call, no retry
      -> answer with a new secret: spool it (fsync) -> commit it as the active credential
         -> delete the spool file -> verify with the provider's test -> `succeeded`
      -> definite refusal (4xx; 5xx confirmed by the probe): `failed`, old credential untouched
      -> no answer (timeout, dropped after sending): probe with the OLD secret
           still accepted -> `failed` ("the vendor did not rotate")
           rejected       -> `outcome_unknown`, connection needs_attention with what to ask support
    -> release the claim

docs/rotation.md draws it and says what the operator sees at each step.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, transaction
from django.utils import timezone

from ..crypto import fingerprint
from ..models import Connection, Credential, CredentialState, Health, RotationAttempt, RotationState
from ..outbound.client import send
from ..outbound.sessions import session_store
from ..providers.http import RefreshError
from ..services.audit import Actor
from ..services.vault import active_credential, credential_activate, credential_add
from . import spool
from .core import (
    BUSY,
    SPOOLED,
    UNSUPPORTED,
    RotationOutcome,
    busy_outcome,
    checkpoint,
    claim_connection,
    clear_rotation_attention,
    close_db_connection,
    host_label,
    journal_finish,
    journal_start,
    outcome_from,
    release_claim,
    run_connection_test,
    set_health,
    utc,
)
from .late import late_grace, pending_recheck, recheck, wait_message
from .probe import Probe, describe_result, error_info, probe_old
from .reconcile import settle_attempt, settle_by_probe
from .schedule import next_refresh_time
from .sessions import start_session

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- rotate()


def rotate(*, connection: Connection, actor: Actor, task_id: str = "",
           attempt_id: str | None = None) -> RotationOutcome:
    """Refresh the connection's secret at the vendor, crash-safely. See the module docstring."""
    claim = claim_connection(connection.pk)
    if claim is None:
        return busy_outcome(connection, "refresh")
    checkpoint("claimed")
    try:
        return _rotate_claimed(connection=connection, actor=actor, task_id=task_id, attempt_id=attempt_id)
    finally:
        try:
            release_claim(connection.pk, claim)
        except DatabaseError:  # the database is down: the lease expires and the reconciler clears it
            log.exception("could not release the rotation claim of %s", connection.name)


def _rotate_claimed(*, connection: Connection, actor: Actor, task_id: str, attempt_id) -> RotationOutcome:
    connection.refresh_from_db()
    # A dead worker's attempt must be settled before we refresh again with what may be a rescinded secret.
    for stale in connection.rotations.unsettled():
        settled = settle_attempt(stale, actor=actor, task_id=task_id)
        if settled.state != RotationState.FAILED:
            return RotationOutcome(
                state=BUSY if settled.state == RotationState.STARTED else settled.state, kind="refresh",
                connection=connection.name, attempt_id=str(stale.id),
                message="An earlier rotation that a stopped worker left unfinished had to be settled first: "
                        + settled.message)
        connection.refresh_from_db()
    timed_out = pending_recheck(connection)
    if timed_out is not None:
        if (timed_out.finished_at or timed_out.started_at) + late_grace() > timezone.now():
            return RotationOutcome(state=BUSY, kind="refresh", connection=connection.name,
                                   attempt_id=str(timed_out.id), message=wait_message(connection, timed_out))
        landed = recheck(timed_out, actor=actor, task_id=task_id)
        if landed is not None:
            return landed
    old = active_credential(connection)
    if old is None:
        return RotationOutcome(state=UNSUPPORTED, kind="refresh", connection=connection.name,
                               message=f"{connection.name} has no active credential to refresh; store one first.")
    provider = connection.provider_obj
    secret = old.reveal()
    mode = provider.rotation_mode(secret)  # from the secret itself: the meta may predate a change
    if mode == "login":
        return start_session(connection=connection, old=old, actor=actor, task_id=task_id, attempt_id=attempt_id)
    if mode != "refresh":
        return RotationOutcome(
            state=UNSUPPORTED, kind="refresh", connection=connection.name,
            message=f"This {provider.label} credential has no refresh; rotate it by pasting a new secret "
                    "(staged replacement).")
    lost = _unsettled_loss(old, provider, secret)
    if lost is not None:
        # The vendor may have rescinded this secret: a refresh with it would be refused and counted
        # against the account (VENDORS.md: never retry _refresh blindly). Only a paste gets out.
        return RotationOutcome(
            state=RotationState.OUTCOME_UNKNOWN, kind="refresh", connection=connection.name,
            attempt_id=str(lost.id), old_fingerprint=lost.old_fingerprint,
            message=f"Not refreshed: the refresh at {utc(lost.started_at)} lost its answer and this secret may "
                    f"have been rescinded by {provider.label}, so refreshing with it again is refused. Paste the "
                    f"secret {provider.label} support issues (Rotate → \"Paste a new secret instead\", or "
                    f"`connections rotate {connection.name} --stdin`).")
    from .grants import refuse_spent

    spent = refuse_spent(connection=connection, old=old, actor=actor)
    if spent is not None:
        return spent  # a replay of a refresh secret already used: refused before anything is sent
    with transaction.atomic():
        attempt = journal_start(connection=connection, actor=actor, kind="refresh", old=old, attempt_id=attempt_id,
                                old_fingerprint=secret_print(provider, old, secret))
    checkpoint("journaled")
    close_db_connection()

    spec = provider.refresh_request(secret, connection.effective_options())
    started = timezone.now()
    try:
        result = send(connection, spec, actor=actor, operation="refresh", credential=old, retry=False,
                      task_id=task_id)
    except Exception as exc:
        # The client failed around the call (e.g. its log write, with the database down): we cannot
        # know whether the vendor answered. Leave the journal row `started`; the reconciler probes.
        log.exception("the refresh call of %s raised", connection.name)
        return RotationOutcome(
            state=RotationState.OUTCOME_UNKNOWN, kind="refresh", connection=connection.name,
            attempt_id=str(attempt.id), old_fingerprint=attempt.old_fingerprint,
            message=f"The refresh call failed inside Switchboard ({exc.__class__.__name__}: {str(exc)[:200]}); "
                    "whether the vendor rotated is unknown. The reconciler settles it by probing the old secret "
                    "within a few minutes; watch the connection's health.")
    attempt.vendor_request_id = (result.vendor_request_id or "")[:200]

    if result.ok:
        try:
            new_secret = provider.parse_refresh(secret, result.data, now=time.time())
        except RefreshError as exc:
            # 2xx without the documented token: the vendor may have rotated. Same as a lost answer.
            return _settle_unknown(connection, attempt, old, actor, task_id, started,
                                   f"the refresh answered {result.status_code} without a new secret ({exc})")
        return _store_new_secret(connection, attempt, old, new_secret, actor, task_id)

    if result.status_code is not None and 200 <= result.status_code < 300 and result.data is None:
        # An answer arrived but its body could not be read (malformed, cut off, not JSON): the vendor
        # may well have rotated. Same as a lost answer: probe, never "unchanged".
        return _settle_unknown(connection, attempt, old, actor, task_id, started,
                               f"the refresh answered {result.status_code} with a body that could not be read "
                               f"({result.error_message or result.error_code})")

    if result.status_code is None:
        if result.maybe_delivered:
            return _settle_unknown(connection, attempt, old, actor, task_id, started,
                                   f"the refresh got no answer ({result.error_message or result.outcome})", late=True)
        # Never reached the vendor (connect refused, DNS, throttled before sending): nothing rotated.
        return _fail(attempt, actor, f"The refresh was not sent: {describe_result(result)}. The current secret is "
                                     "unchanged and still active.", result)
    if provider.recovers_by_login(secret) and (
            result.status_code >= 500 or provider.rejects_secret(result.status_code, error_info(result))):
        # A session refresh that failed, or whose refresh token is refused: the old access token
        # cannot tell whether the refresh token was consumed. Log in again (rotation/sessions.py).
        return _settle_unknown(connection, attempt, old, actor, task_id, started,
                               f"the refresh answered {describe_result(result)}")
    if result.status_code >= 500:
        # A 5xx is an answer, but not proof that nothing rotated: ask the old secret.
        probe = probe_old(connection=connection, credential=old, actor=actor, task_id=task_id)
        if probe.verdict == "rejected":
            return _settle_unknown(connection, attempt, old, actor, task_id, started,
                                   f"the refresh answered {describe_result(result)}", probe=probe)
        return _fail(attempt, actor, f"{provider.label} refused the refresh: {describe_result(result)}. The current "
                                     f"secret is unchanged and still active ({probe.detail}).", result)
    if provider.grant_refused(result.status_code, error_info(result)):
        from .grants import grant_refused

        return grant_refused(connection=connection, attempt=attempt, actor=actor, result=result,
                             what=describe_result(result))
    return _fail(attempt, actor, f"{provider.label} refused the refresh: {describe_result(result)}. The current secret "
                                 "is unchanged and still active" + (
                                     "; the vendor rejected it, so it may have been revoked: test the connection."
                                     if result.status_code in (401, 403) else "."), result)


def _unsettled_loss(credential: Credential, provider, secret: dict) -> RotationAttempt | None:
    """A refresh with this very secret whose outcome is unknown (its answer lost; the probe found the
    secret rejected, or could not tell). Sessions log in again instead, so they are never blocked."""
    if provider.recovers_by_login(secret):
        return None
    return RotationAttempt.objects.lost_refreshes(credential).newest_first().first()


def _error_of(result) -> dict:
    return {"status": result.status_code, "code": result.error_code, "message": result.error_message,
            "outcome": result.outcome}


def _fail(attempt: RotationAttempt, actor: Actor, message: str, result=None) -> RotationOutcome:
    with transaction.atomic():
        journal_finish(attempt, state=RotationState.FAILED, actor=actor, error=message)
    return outcome_from(attempt, message, error=_error_of(result) if result is not None else {})


def _without_session(secret: dict) -> dict:
    return {k: v for k, v in secret.items() if k != "session"}


def session_mode(provider, old_secret: dict, new_secret: dict) -> bool:
    """A session refresh (TeleTracker): the operator's secret is unchanged, only the session inside it.

    Sessions live inside the credential (outbound/sessions.py), so the refresh updates that
    credential in place instead of adding a version per hourly refresh.
    """
    return provider.has_session(new_secret) and _without_session(new_secret) == _without_session(old_secret)


def secret_print(provider, credential: Credential, secret: dict) -> str:
    """The fingerprint the journal shows: the session's for session credentials, else the credential's."""
    if provider.has_session(secret):
        return fingerprint(secret["session"])
    return credential.fingerprint


def _store_new_secret(connection: Connection, attempt: RotationAttempt, old: Credential, new_secret: dict,
                      actor: Actor, task_id: str) -> RotationOutcome:
    provider = connection.provider_obj
    meta = provider.credential_meta(new_secret)
    in_place = session_mode(provider, old.reveal(), new_secret)
    new_print = fingerprint(new_secret["session"]) if in_place else fingerprint(new_secret)
    # Write-ahead: the token is on disk before anything else can fail.
    path = spool.write(connection=connection, attempt=attempt, secret=new_secret, meta=meta,
                       vendor_request_id=attempt.vendor_request_id, mode="session" if in_place else "version",
                       new_fingerprint=new_print)
    checkpoint("spooled")
    try:
        credential = _commit_new_secret(connection, attempt, old, new_secret, meta, actor, in_place)
    except Exception as first:
        log.warning("committing the refreshed secret of %s failed (%s); retrying once", connection.name, first)
        close_db_connection()  # a fresh connection for the retry (outside tests' transactions)
        try:
            credential = _commit_new_secret(connection, attempt, old, new_secret, meta, actor, in_place)
        except Exception as exc:
            log.exception("the refreshed secret of %s is in the spool: %s", connection.name, path)
            message = (f"{provider.label} issued a new secret but the database write failed "
                       f"({exc.__class__.__name__}: {str(exc)[:200]}). The secret is safe in the encrypted "
                       f"recovery spool on {host_label().split(':')[0]} ({path}). When the database is back, run "
                       "`python manage.py connections recover` on that machine (the reconciler also imports it "
                       "within a minute). The old secret no longer works.")
            _mark_spooled(attempt, message, short=(
                f"{provider.label} issued a new secret at {utc(timezone.now())} but the database write failed; "
                f"it is in the encrypted recovery spool on {host_label().split(':')[0]}. Run `python manage.py "
                "connections recover` on that machine. The old secret no longer works."))
            return RotationOutcome(
                state=SPOOLED, message=message, connection=connection.name, attempt_id=str(attempt.id),
                kind="refresh", vendor_request_id=attempt.vendor_request_id,
                old_fingerprint=attempt.old_fingerprint, new_fingerprint=new_print)
    checkpoint("committed")
    spool.remove(path)
    if in_place:
        message = (f"Rotated: {provider.label} issued a new session and refresh token, stored in v{credential.version} "
                   f"(session fingerprint {new_print}); the old refresh token is dead.")
    else:
        message = (f"Rotated: {provider.label} issued a new secret, now active as v{credential.version} "
                   f"(fingerprint {credential.fingerprint}); the old one (v{old.version}) is rescinded.")
    return _verify(connection, attempt, credential, actor, task_id, message)


def _commit_new_secret(connection, attempt, old, new_secret, meta, actor, in_place: bool) -> Credential:
    if in_place:
        return _commit_session(connection, attempt, old, new_secret, actor)
    with transaction.atomic():
        Connection.objects.select_for_update().get(pk=connection.pk)
        now = timezone.now()
        current = active_credential(connection)
        # The vendor rescinded the secret we refreshed with; anything else active is merely retired.
        Credential.objects.filter(pk=old.pk).update(state=CredentialState.RESCINDED, retired_at=now)
        credential = credential_add(connection=connection, secret=new_secret, actor=actor, source="refresh",
                                    meta=meta)
        credential_activate(credential=credential)
        note = ""
        if current is not None and current.pk != old.pk:
            note = f"v{current.version} had been activated during the refresh; it is retired."
        journal_finish(attempt, state=RotationState.SUCCEEDED, actor=actor, step="committed",
                       new_credential=credential, new_fingerprint=credential.fingerprint,
                       vendor_request_id=attempt.vendor_request_id, error=note)
        Connection.objects.filter(pk=connection.pk).update(next_refresh_at=_next_refresh(connection, credential))
        clear_rotation_attention(connection.pk, f"A refresh at {utc(now)} stored a new secret.")
    return credential


def _commit_session(connection, attempt, old, new_secret, actor) -> Credential:
    with transaction.atomic():
        Connection.objects.select_for_update().get(pk=connection.pk)
        session_store(credential=old, session=new_secret["session"])
        journal_finish(attempt, state=RotationState.SUCCEEDED, actor=actor, step="committed", new_credential=old,
                       new_fingerprint=fingerprint(new_secret["session"]),
                       vendor_request_id=attempt.vendor_request_id)
        old.refresh_from_db()
        Connection.objects.filter(pk=connection.pk).update(next_refresh_at=_next_refresh(connection, old))
        clear_rotation_attention(connection.pk, f"A session refresh at {utc(timezone.now())} succeeded.")
    return old


def _mark_spooled(attempt: RotationAttempt, message: str, short: str) -> None:
    """Best effort: the database may be the thing that is down."""
    try:
        close_db_connection()
        RotationAttempt.objects.filter(pk=attempt.pk, state=RotationState.STARTED).update(
            step="spooled", error=message[:5000])
        set_health(attempt.connection_id, Health.NEEDS_ATTENTION, short)
    except Exception:
        log.exception("could not mark attempt %s as spooled", attempt.pk)


def _next_refresh(connection: Connection, credential: Credential):
    """When the next proactive refresh is due: the refresh interval, or before a session expires."""
    return next_refresh_time(connection, credential)


def _verify(connection, attempt, credential, actor, task_id, message) -> RotationOutcome:
    """Check the new (now active) secret: the provider's connection test, and where the test does
    not check the rotated secret (pub_echo; TeleTracker's password-only login test), the probe."""
    connection.refresh_from_db()
    credential.refresh_from_db()
    checks = []
    verified: bool | None = None
    try:
        result = run_connection_test(connection=connection, actor=actor, task_id=task_id)
        verified = bool(result.ok)
        text = connection.provider_obj.describe_test(connection.effective_options())
        checks.append(f"Test passed: {text}" if result.ok else f"Test failed: {describe_result(result)}. ({text})")
    except Exception as exc:  # the rotation is committed; a failing test must not hide that
        log.exception("testing %s after its rotation failed", connection.name)
        checks.append(f"The test could not run: {exc}.")
    probe = probe_old(connection=connection, credential=credential, actor=actor, task_id=task_id)
    if probe.verdict in ("alive", "rejected"):
        good = probe.verdict == "alive"
        verified = good if verified is None else (verified and good)
        checks.append(("The new secret is accepted: " if good else "The new secret is REJECTED: ")
                      + probe.detail.replace("old secret", "new secret") + ".")
    verification = " ".join(checks)
    RotationAttempt.objects.filter(pk=attempt.pk).update(
        step="verified" if verified else "verify_failed",
        error=((attempt.error + "\n") if attempt.error else "") + verification)
    return outcome_from(attempt, message + " " + verification, verified=verified, verification=verification)


def _settle_unknown(connection, attempt, old, actor, task_id, started, what: str, probe: Probe | None = None,
                    late: bool = False) -> RotationOutcome:
    """No definite answer: never retry; ask the old secret whether the vendor rotated. `late`: the
    vendor has the request and may still act on it (rotation/late.py)."""
    return settle_by_probe(attempt, connection=connection, old=old, actor=actor, task_id=task_id, when=started,
                           what=what, probe=probe, late=late)
