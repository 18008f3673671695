"""THE outbound path: every request to a vendor goes through `send()` (DESIGN.md).

    result = send(connection, RequestSpec("GET", "/connection/test"), actor=actor, operation="test")

Per attempt: outbound guard -> shared throttle -> the provider authenticates -> send with
connect/read timeouts, no redirects, at most OUTBOUND_MAX_BODY_BYTES read -> one RequestLog row
(redacted, size-capped excerpts) -> the connection's rate-limit snapshot and blocks -> the
provider's error parsing -> retry or stop as the provider's policy says. Nothing escapes as an
exception except programming errors: refusals, timeouts, resets, malformed or oversized bodies
all come back as a Result with a clear outcome, and each has its RequestLog row.

Here: the loop over attempts, the active credential, sessions (a login before the first call,
stored by sessions.py). One attempt is attempt.py; its records (Result, the RequestLog rows) are
call.py. Sockets are opened by transport.py, pinned to addresses the guard checked; only
connections/outbound/ imports requests (import-linter checks it).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from django.views.decorators.debug import sensitive_variables

from ..crypto import SecretUnavailable
from ..models import Connection, Credential, Outcome, RequestLog
from ..providers.http import Attempt, RefreshError, RequestSpec
from . import guard, sessions
from .attempt import MIN_TRY_SECONDS, attempt
from .call import Call, Result, Try
from .credrows import current_credential, kept_credential, revealed
from .redaction import Redactor

__all__ = ["RequestSpec", "Result", "send"]

log = logging.getLogger(__name__)

# Tests replace this to observe backoff without waiting.
_sleep = time.sleep


def reveal(credential: Credential) -> dict:
    """A credential's plaintext secret, whether loaded (Sealed) or just created in memory (a dict);
    the process's kept copy when credrows decrypted this very ciphertext already."""
    secret = credential.secret
    if isinstance(secret, dict):
        return dict(secret)
    kept = revealed(credential)
    return kept if kept is not None else secret.reveal()


def _active_credential(connection: Connection) -> Credential | None:
    """The active credential: kept in this process while its generation says it is current (credrows)."""
    return current_credential(connection.pk)


def _origin_refusal(connection: Connection, credential: Credential, url: str = "") -> str:
    """Why this credential may not go to the connection's current origin, or "" (it may).

    A secret is bound to the scheme, host and port it was entered for (services.vault.credential_add);
    changing them retires it, and this check holds even for a secret a caller passes explicitly.
    A request to another origin (oauth2's token endpoint) needs that origin bound too."""
    bound = (credential.meta or {}).get("origin")
    current = guard.origin(connection.base_url)
    target = guard.origin(url) if url else current
    if target != current and bound and bound == current:
        if target in (credential.meta or {}).get("also_origins", []):
            return ""
        return (f"not sent: credential v{credential.version} was not entered for {target}; Switchboard sends a "
                "secret only to the origins it was entered for")
    if bound and bound == current:
        return ""
    return (f"not sent: credential v{credential.version} was entered for {bound or 'another host'}, and "
            f"{connection.name} now points at {current or connection.base_url}; "
            "enter the secret again for the new host")


@sensitive_variables()
def send(connection: Connection, spec: RequestSpec, *, actor, operation: str = "call",
         credential: Credential | None = None, retry: bool = True, task_id: str = "",
         max_wait: float | None = None, max_body: int | None = None, _kept: bool = True) -> Result:
    """Send one logical request to the connection's vendor; see the module docstring.

    credential=None uses the active credential (current: credrows.py); pass a Credential to use that one
    (staged verification, probing with an old secret). retry=False makes exactly one attempt
    (refresh calls). max_wait bounds every wait (throttle, Retry-After, backoff); by default
    OUTBOUND_MAX_WAIT for users and the CLI, OUTBOUND_MAX_WAIT_BACKGROUND otherwise. max_body:
    the most of an answer read (default OUTBOUND_MAX_BODY_BYTES).

    With Redis, a credential this process kept is sent with unchecked when the call needs nothing
    but one plain request with it; the limiter's script checks its generation in the same round
    trip as its decision, and a stale one sends nothing: the call starts again (`_kept=False`)
    with the credential read now (credrows.py, docs/performance.md).
    """
    call = Call(connection, spec, actor=actor, operation=operation, task_id=task_id, max_wait=max_wait,
                max_body=max_body)
    provider = call.provider
    tries: list[Try] = []

    def finish(cred: Credential | None = None) -> Result:
        return _result(call, tries, cred)

    try:
        call.url = provider.url_for(connection.base_url, spec.path)
    except ValueError as exc:
        tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, "bad_path", str(exc)))
        return finish()
    refusal = guard.check_url(call.url)
    if refusal is not None:
        tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, refusal.code, refusal.message,
                                   details={"category": "dns" if refusal.code == "dns_failed" else "refused"}))
        return finish()

    explicit = credential is not None
    check = secret = None
    if explicit:
        cred = credential
    else:
        kept = kept_credential(connection.pk) if _kept else None
        secret = _plain(connection, kept[0], call, spec) if kept is not None else None
        if secret is not None:
            cred, check = kept
        else:
            cred = _active_credential(connection)
    if check is None:  # (a kept credential's plain call passed these checks in _plain)
        if _archived(connection, cred):
            tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, "archived",
                                       f"connection {connection.name} is archived: nothing is sent for it"))
            return finish()
        if cred is None:
            tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, "no_credential",
                                       f"connection {connection.name} has no active credential; store a secret first"))
            return finish()
        unbound = _origin_refusal(connection, cred, call.url)
        if unbound:
            tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, "secret_not_for_this_host", unbound))
            return finish(cred)
        try:
            secret = reveal(cred)
        except SecretUnavailable as exc:
            tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, "secret_unavailable", str(exc)))
            return finish(cred)
    call.redactor = Redactor(provider.secret_values(secret), provider.composite_values(secret))

    if not explicit and provider.needs_session(secret, call.options, spec) and provider.renews_by_rotation(secret):
        fresh = _renewed_since(connection, cred, call, spec)
        if fresh is not None:
            cred, secret = fresh
            call.redactor = Redactor(provider.secret_values(secret), provider.composite_values(secret))
    if provider.needs_session(secret, call.options, spec) and provider.renews_by_rotation(secret):
        # A rotating refresh (oauth2): through rotation's claim, never a second refresh of one grant.
        renewed, why = ((None, "only the active credential is renewed") if explicit
                        else sessions.session_renew(connection=connection, actor=actor, task_id=task_id))
        try:
            secret = reveal(renewed) if renewed is not None else secret
        except SecretUnavailable as exc:
            renewed, why = None, str(exc)
        if renewed is None:
            tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, "access_token_expired",
                                       f"not sent: the access token is missing or expired and was not renewed: {why}"))
            return finish(cred)
        cred = renewed
        call.redactor = Redactor(provider.secret_values(secret), provider.composite_values(secret))
    elif provider.needs_session(secret, call.options, spec):
        login, new_secret = session_login(connection=connection, credential=cred, actor=actor, task_id=task_id)
        if new_secret is None:
            login.error_message = f"login for a bearer session failed: {login.error_message}"
            return login
        secret = new_secret
        call.redactor = Redactor(provider.secret_values(secret), provider.composite_values(secret))

    swapped = False
    number = 0
    while True:
        number += 1
        t = attempt(call, number, cred, secret, check if number == 1 else None)
        if t.stale:  # the kept credential changed: nothing was sent or recorded; again, read now
            return send(connection, spec, actor=actor, operation=operation, retry=retry, task_id=task_id,
                        max_wait=max_wait, max_body=max_body, _kept=False)
        tries.append(t)
        if t.ok or not t.sent:
            break
        if not explicit and not swapped and provider.rejects_secret(t.status, t.error):
            # A rotation may have finished while this request was in flight with the old secret:
            # retry ONCE with the new active one (DESIGN.md, rotation). A rejection without a new
            # secret to try (a wrong password, a 403 for a service the token may not use): never.
            fresh = _active_credential(connection)
            if fresh is not None and fresh.pk != cred.pk and not _origin_refusal(connection, fresh, call.url):
                try:
                    secret = reveal(fresh)
                except SecretUnavailable:
                    break
                cred, swapped = fresh, True
                call.redactor = call.redactor.extend(provider.secret_values(secret), provider.composite_values(secret))
                continue
        if t.auth_failed and spec.auth == "default" and provider.has_session(secret):
            sessions.session_forget(credential=cred)  # the next call logs in afresh
        if not retry:
            break
        delay = provider.retry_delay(
            Attempt(number=number, status=t.status, outcome=t.outcome, error=t.error, rate=t.rate,
                    maybe_delivered=t.maybe_delivered, idempotent=spec.is_idempotent()),
            time.time(),
        )
        if delay is None:
            break
        if call.remaining() - delay < MIN_TRY_SECONDS:
            t.error.details["retry_stopped"] = (
                f"the next try would start {delay:.1f} s from now, too close to this operation's "
                f"{call.deadline_s:g} s deadline; stopped instead")
            t.error.message = (t.error.message + f" Gave up at the operation's {call.deadline_s:g} s deadline "
                               f"after {number} {'try' if number == 1 else 'tries'}.").strip()
            if t.log_id:
                RequestLog.objects.filter(pk=t.log_id).update(error_details=call.redactor.obj(t.error.details))
            break
        if delay > call.max_wait or call.slept + delay > 2 * call.max_wait:
            t.error.details["retry_stopped"] = (
                f"the next try would wait {delay:.1f} s, longer than this caller may wait "
                f"({call.max_wait:g} s); stopped instead"
            )
            if t.log_id:
                RequestLog.objects.filter(pk=t.log_id).update(error_details=call.redactor.obj(t.error.details))
            break
        _sleep(delay)
        call.slept += delay
    return finish(cred)


def _archived(connection: Connection, cred: Credential | None) -> bool:
    """Nothing is sent for an archived connection, nor with a credential archiving retired."""
    return connection.archived_at is not None or (cred is not None and cred.meta.get("retired_because") == "archived")


@sensitive_variables()
def _plain(connection: Connection, cred: Credential, call: Call, spec: RequestSpec) -> dict | None:
    """The secret of a kept credential that leads straight to one attempt (not archived, bound to
    this origin, decryptable, no session to log in or renew): only then is it sent with before it
    is checked. None otherwise: every other path reads the credential first, as it changes things
    (a login, a refresh)."""
    if _archived(connection, cred):
        return None
    if _origin_refusal(connection, cred, call.url):
        return None
    try:
        secret = reveal(cred)
    except SecretUnavailable:
        return None
    return None if call.provider.needs_session(secret, call.options, spec) else secret


@sensitive_variables()
def _renewed_since(connection: Connection, cred: Credential, call: Call,
                   spec: RequestSpec) -> tuple[Credential, dict] | None:
    """The active credential and its secret when a rotation replaced `cred` (read before it
    committed) and left the active one an access token the call can use; else None.

    Invariant (c), docs/rotation.md "Requests in flight": no call in flight fails because a rotation
    succeeded. Refreshing again instead would spend a refresh token for nothing, and during a lost
    answer's recheck window no refresh may be sent at all (rotation/late.py), so the call failed."""
    fresh = _active_credential(connection)
    if fresh is None or fresh.pk == cred.pk or _origin_refusal(connection, fresh, call.url):
        return None
    try:
        secret = reveal(fresh)
    except SecretUnavailable:
        return None
    if call.provider.needs_session(secret, call.options, spec):
        return None
    return fresh, secret


def session_login(*, connection, credential: Credential, actor, task_id: str = ""):
    """Log in and store the session (outbound/sessions.py). Returns (Result of the login, the new
    secret or None)."""
    provider = connection.provider_obj
    result = send(connection, provider.login_request(connection.effective_options()), actor=actor,
                  operation="login", credential=credential, task_id=task_id)
    if not result.ok:
        return result, None
    try:
        secret = provider.parse_login(reveal(credential), result.data, time.time())
    except RefreshError as exc:
        result.ok = False
        result.error_code = "bad_login_answer"
        result.error_message = str(exc)
        return result, None
    return result, sessions.session_store(credential=credential, session=secret["session"])


def _result(call: Call, tries: list[Try], cred: Credential | None) -> Result:
    last = tries[-1]
    blocked = next((t.blocked_until for t in reversed(tries) if t.blocked_until), None)
    r = call.redactor
    return Result(
        ok=last.ok,
        status_code=last.status,
        duration_ms=int((time.monotonic() - call.started) * 1000),
        last_attempt_ms=last.duration_ms,
        outcome=last.outcome,
        vendor_request_id=r(last.error.request_id),
        error_code=last.error.code,
        error_message=r(last.error.message),
        error_details=r.obj(last.error.details),
        data=last.data,
        headers=last.headers,
        attempts=sum(1 for t in tries if t.sent),
        log_ids=[t.log_id for t in tries if t.log_id],
        chain_id=call.chain_id,
        maybe_delivered=any(t.maybe_delivered for t in tries),
        auth_failed=last.auth_failed,
        retry_after=last.rate.retry_after,
        blocked_until=datetime.fromtimestamp(blocked, UTC) if blocked else None,
        rate_limit=r.obj(last.rate.as_dict()),
        credential_id=cred.pk if cred else None,
        content_type=last.content_type,
        body=last.body,
        body_truncated=last.truncated,
        redactor=r,
    )


