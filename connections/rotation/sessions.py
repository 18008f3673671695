"""Bearer sessions in rotation (TeleTracker): starting the first session, and recovering after a
refresh whose outcome is unknown.

A session refresh consumes the refresh token; whether it did cannot be checked without
consuming it, and the old access token may well still answer (VENDORS.md only says the old
refresh token dies). So after a lost, garbled, 5xx or refused refresh, the safe move is not a
probe but a new login with the stored user name and password: a new session, whatever the
refresh did. A login rescinds nothing, so it needs no spool. If the login is refused, the
connection needs attention with what to check.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..crypto import fingerprint
from ..models import Connection, Credential, Health, RotationAttempt, RotationState
from ..outbound.client import session_login
from ..outbound.sessions import session_forget
from ..services.audit import Actor
from .core import (
    RotationOutcome,
    checkpoint,
    clear_rotation_attention,
    close_db_connection,
    journal_finish,
    journal_start,
    outcome_from,
    set_health,
    utc,
)
from .probe import describe_result
from .schedule import next_refresh_time


def _login(connection: Connection, credential: Credential, actor: Actor, task_id: str):
    return session_login(connection=connection, credential=credential, actor=actor, task_id=task_id)


def _after_login(connection: Connection, credential: Credential, reason: str) -> None:
    credential.refresh_from_db()
    Connection.objects.filter(pk=connection.pk).update(next_refresh_at=next_refresh_time(connection, credential))
    clear_rotation_attention(connection.pk, reason)


def start_session(*, connection: Connection, old: Credential, actor: Actor, task_id: str = "",
                  attempt_id: str | None = None) -> RotationOutcome:
    """`rotate` of a bearer-session credential with no session yet: log in (the caller holds the claim)."""
    provider = connection.provider_obj
    with transaction.atomic():
        attempt = journal_start(connection=connection, actor=actor, kind="refresh", old=old, attempt_id=attempt_id)
    checkpoint("journaled")
    close_db_connection()
    result, secret = _login(connection, old, actor, task_id)
    attempt.vendor_request_id = (result.vendor_request_id or "")[:200]
    if secret is None:
        message = (f"{provider.label} refused the login that starts a session: {describe_result(result)}. Nothing "
                   "changed. Check the user name and password (and the account id), then try again.")
        with transaction.atomic():
            journal_finish(attempt, state=RotationState.FAILED, actor=actor, step="login_refused", error=message)
        return outcome_from(attempt, message, error={"status": result.status_code, "code": result.error_code,
                                                     "message": result.error_message, "outcome": result.outcome})
    new_print = fingerprint(secret["session"])
    message = (f"Started a {provider.label} session: {provider.login_words} "
               f"(session fingerprint {new_print}). Switchboard refreshes it before it expires.")
    with transaction.atomic():
        journal_finish(attempt, state=RotationState.SUCCEEDED, actor=actor, step="session_started",
                       new_credential=old, new_fingerprint=new_print, vendor_request_id=attempt.vendor_request_id)
        _after_login(connection, old, f"A {provider.label} session was started at {utc(timezone.now())}.")
    return outcome_from(attempt, message, verified=True, verification="The login succeeded.")


def recover_by_login(attempt: RotationAttempt, *, connection: Connection, old: Credential, actor: Actor,
                     task_id: str = "", when=None, what: str = "") -> RotationOutcome:
    """Settle a session refresh whose outcome is unknown by logging in again (a new session)."""
    provider = connection.provider_obj
    when = when or attempt.started_at
    session_forget(credential=old)  # whatever the refresh did, this session is not to be trusted
    result, secret = _login(connection, old, actor, task_id)
    if secret is not None:
        new_print = fingerprint(secret["session"])
        message = (f"{what[:1].upper()}{what[1:]}. Whatever that request did, Switchboard "
                   f"{provider.login_words.replace('logged in', 'logged in again')}: new session "
                   f"{new_print}. Nothing for an operator to do.")
        with transaction.atomic():
            journal_finish(attempt, state=RotationState.RECOVERED, actor=actor, step="logged_in_again",
                           new_credential=old, new_fingerprint=new_print, error=message)
            _after_login(connection, old, f"A new {provider.label} session was started at {utc(timezone.now())}.")
        return outcome_from(attempt, message)
    req = f" (request id {attempt.vendor_request_id})" if attempt.vendor_request_id else ""
    message = (f"The {provider.label} session refresh at {utc(when)}{req} did not complete ({what}), and logging "
               f"in again was refused: {describe_result(result)}. The session was dropped, so calls fail until a login "
               f"works. Action: check the user name and password at {provider.label} (the account may be "
               f"locked), then paste them: Rotate → \"Paste a new secret\", or `connections rotate "
               f"{connection.name} --stdin`. Do not refresh again.")
    with transaction.atomic():
        journal_finish(attempt, state=RotationState.OUTCOME_UNKNOWN, actor=actor, step="login_refused",
                       error=message)
        set_health(connection.pk, Health.NEEDS_ATTENTION, message)
    return outcome_from(attempt, message)
