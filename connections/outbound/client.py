"""THE outbound path: every request to a vendor goes through `send()` (DESIGN.md).

    result = send(connection, RequestSpec("GET", "/connection/test"), actor=actor, operation="test")

Per attempt: outbound guard -> shared throttle -> the provider authenticates -> send with
connect/read timeouts, no redirects, at most OUTBOUND_MAX_BODY_BYTES read -> one RequestLog row
(redacted, size-capped excerpts) -> the connection's rate-limit snapshot and blocks -> the
provider's error parsing -> retry or stop as the provider's policy says. Nothing escapes as an
exception except programming errors: refusals, timeouts, resets, malformed or oversized bodies
all come back as a Result with a clear outcome, and each has its RequestLog row.

Sockets are opened by connections/outbound/transport.py, pinned to addresses the guard checked; only
these two modules import requests.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db import Error as DatabaseErrors
from django.db import connections as db_connections
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from requests.structures import CaseInsensitiveDict

from ..crypto import SecretUnavailable
from ..models import Connection, Credential, CredentialState, Outcome, RequestLog
from ..providers.http import (
    Attempt,
    ErrorInfo,
    Outbound,
    RateLimitInfo,
    Reply,
    RequestSpec,
    media_kind,
    parse_body,
)
from . import guard, logrows, transport
from .commits import fast_commit
from .redaction import Redactor, excerpt, header_lines, redact_url
from .throttle import get_limiter

__all__ = ["RequestSpec", "Result", "send"]

log = logging.getLogger(__name__)

RESPONSE_HEADERS_LOGGED = ("content-type", "content-length", "retry-after", "location", "www-authenticate",
                           "x-request-id", "request-id")
# A try (or a retry's wait) is not started with less than this left of the operation's deadline.
MIN_TRY_SECONDS = 0.2
# Tests replace this to observe backoff without waiting.
_sleep = time.sleep


@dataclass
class Result:
    """The outcome of one send (all its attempts). `duration_ms` is the whole send: every attempt
    and every wait between them (what the caller waited); `last_attempt_ms` the last answer's time.

    maybe_delivered: True when some attempt's outcome is unknown (sent, then a read timeout or a
    dropped connection): the vendor may have acted on it. False when we never sent, connecting
    failed, or an answer arrived (the status says what happened)."""

    ok: bool
    status_code: int | None
    duration_ms: int
    outcome: str
    last_attempt_ms: int = 0
    vendor_request_id: str = ""
    error_code: str = ""
    error_message: str = ""
    error_details: dict = field(default_factory=dict)
    data: Any = None
    headers: CaseInsensitiveDict = field(default_factory=CaseInsensitiveDict)
    attempts: int = 0
    log_ids: list[int] = field(default_factory=list)
    chain_id: uuid.UUID | None = None
    maybe_delivered: bool = False
    auth_failed: bool = False  # the vendor rejected the credential (never retried)
    retry_after: float | None = None
    blocked_until: datetime | None = None
    rate_limit: dict = field(default_factory=dict)
    credential_id: int | None = None
    content_type: str = ""

    @property
    def sent(self) -> bool:
        return self.status_code is not None or self.maybe_delivered or self.outcome == Outcome.TIMEOUT

    def summary(self) -> dict:
        """The shape of DESIGN.md's `test --json` and Connection.last_test_result."""
        return {
            "ok": self.ok,
            "status_code": self.status_code,
            "duration_ms": self.duration_ms,
            "vendor_request_id": self.vendor_request_id,
            "error": None if self.ok else {"code": self.error_code, "message": self.error_message},
        }


# ----------------------------------------------------------------------------- one send


@dataclass
class _Try:
    """One attempt, as recorded."""

    outcome: str
    status: int | None = None
    duration_ms: int = 0
    error: ErrorInfo = field(default_factory=ErrorInfo)
    rate: RateLimitInfo = field(default_factory=RateLimitInfo)
    data: Any = None
    headers: CaseInsensitiveDict = field(default_factory=CaseInsensitiveDict)
    maybe_delivered: bool = False
    auth_failed: bool = False
    blocked_until: float | None = None
    content_type: str = ""
    log_id: int | None = None
    sent: bool = True

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK


class _Call:
    """State shared by the attempts of one send()."""

    def __init__(self, connection: Connection, spec: RequestSpec, *, actor, operation: str, task_id: str,
                 max_wait: float | None):
        self.connection = connection
        self.provider = connection.provider_obj
        self.options = connection.effective_options()
        self.spec = spec
        self.actor = actor
        self.operation = operation
        self.task_id = task_id or ""
        self.chain_id = uuid.uuid4()
        interactive = getattr(actor, "via", "system") in ("user", "cli")
        default_wait = settings.OUTBOUND_MAX_WAIT if interactive else settings.OUTBOUND_MAX_WAIT_BACKGROUND
        self.max_wait = default_wait if max_wait is None else max_wait
        self.deadline_s = settings.OUTBOUND_DEADLINE if interactive else settings.OUTBOUND_DEADLINE_BACKGROUND
        self.deadline = time.monotonic() + self.deadline_s  # for all tries of this send
        self.slept = 0.0
        self.started = time.monotonic()
        self.url = ""
        self.sent_url = ""  # with the query string, once prepared
        self.redactor = Redactor()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    # -- recording ------------------------------------------------------------
    def path_for_log(self) -> str:
        """Path and query (secrets redacted); the host is the connection's."""
        url = self.sent_url or self.url
        if not url:
            return self.redactor(self.spec.path)[:1000]
        # Split before redacting: a secret learnt from an answer may match part of the host.
        parts = urlsplit(url)
        return redact_url(urlunsplit(("", "", parts.path, parts.query, "")), self.redactor)[:1000]

    def record(self, attempt: int, t: _Try, *, started_at: datetime, request_excerpt: str = "",
               response_excerpt: str = "") -> _Try:
        r = self.redactor
        t.log_id = _insert_log(
            connection=self.connection,
            provider=self.connection.provider,
            operation=self.operation,
            method=self.spec.method.upper()[:10],
            path=self.path_for_log(),
            chain_id=self.chain_id,
            attempt=attempt,
            started_at=started_at,
            duration_ms=t.duration_ms,
            status_code=t.status,
            outcome=t.outcome,
            vendor_request_id=r(t.error.request_id)[:200],
            error_code=t.error.code[:100],
            error_message=r(t.error.message)[:2000],
            error_details=r.obj(t.error.details) if t.error.details else {},
            rate_limit=r.obj(t.rate.as_dict()) if t.rate else {},
            retry_after=t.rate.retry_after,
            request_excerpt=request_excerpt,
            response_excerpt=response_excerpt,
            response_content_type=t.content_type[:200],
            triggered_by=getattr(self.actor, "via", "system")[:20],
            actor_label=getattr(self.actor, "label", "")[:150],
            task_id=self.task_id[:100],
        )
        return t

    def not_sent(self, attempt: int, outcome: str, code: str, message: str, *, blocked_until: float | None = None,
                 details: dict | None = None) -> _Try:
        t = _Try(outcome=outcome, error=ErrorInfo(code=code, message=message, details=details or {}),
                 blocked_until=blocked_until, sent=False)
        head = f"{self.spec.method.upper()} {self.path_for_log()}\n[not sent: {code}]"
        return self.record(attempt, t, started_at=timezone.now(), request_excerpt=head)


def storable(value: Any) -> Any:
    """A vendor-supplied value PostgreSQL accepts: no NUL in text (nor in JSON), no NaN or
    infinity in JSON (a hostile vendor sends both)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, float) and value - value != 0:  # inf, -inf, nan
        return str(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def _insert_log(**fields) -> int | None:
    """Write one RequestLog row; its id. Outside a caller's transaction the commit does not wait for
    the disk (commits.fast_commit): a power cut may lose the last fraction of a second of log rows,
    never corrupt them, and every send saves the fsync. Credentials and the rotation journal keep
    durable commits. The rollup trigger (rollups.py) counts the row in the same transaction."""
    fields = {name: storable(value) for name, value in fields.items()}
    try:
        conn = db_connections[DEFAULT_DB_ALIAS]
        if conn.vendor == "postgresql" and not conn.in_atomic_block:
            return logrows.insert_fast(conn, fields)
        # A savepoint inside a caller's transaction, so a failed insert cannot poison it.
        with fast_commit():
            return RequestLog.objects.create(**fields).pk
    except DatabaseErrors as exc:
        # The vendor's answer matters more than its log row: a refresh's new token must reach
        # the rotation code (which commits or spools it) even while the database is failing.
        log.warning("could not write the request log row for %s %s (%s); the call's result is kept",
                    fields.get("method"), fields.get("operation"), type(exc).__name__)
        return None


def reveal(credential: Credential) -> dict:
    """A credential's plaintext secret, whether loaded (Sealed) or just created in memory (a dict)."""
    secret = credential.secret
    return dict(secret) if isinstance(secret, dict) else secret.reveal()


def _active_credential(connection: Connection) -> Credential | None:
    return Credential.objects.filter(connection_id=connection.pk, state=CredentialState.ACTIVE).first()


def _origin_refusal(connection: Connection, credential: Credential) -> str:
    """Why this credential may not go to the connection's current origin, or "" (it may).

    A secret is bound to the scheme, host and port it was entered for (services.vault.credential_add);
    changing them retires it, and this check holds even for a secret a caller passes explicitly."""
    bound = (credential.meta or {}).get("origin")
    current = guard.origin(connection.base_url)
    if bound and bound == current:
        return ""
    return (f"not sent: credential v{credential.version} was entered for {bound or 'another host'}, and "
            f"{connection.name} now points at {current or connection.base_url}; "
            "enter the secret again for the new host")


@sensitive_variables()
def send(connection: Connection, spec: RequestSpec, *, actor, operation: str = "call",
         credential: Credential | None = None, retry: bool = True, task_id: str = "",
         max_wait: float | None = None) -> Result:
    """Send one logical request to the connection's vendor; see the module docstring.

    credential=None uses the active credential, read now; pass a Credential to use that one
    (staged verification, probing with an old secret). retry=False makes exactly one attempt
    (refresh calls). max_wait bounds every wait (throttle, Retry-After, backoff); by default
    OUTBOUND_MAX_WAIT for users and the CLI, OUTBOUND_MAX_WAIT_BACKGROUND otherwise.
    """
    call = _Call(connection, spec, actor=actor, operation=operation, task_id=task_id, max_wait=max_wait)
    provider = call.provider
    tries: list[_Try] = []

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
    cred = credential if explicit else _active_credential(connection)
    if cred is None:
        tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, "no_credential",
                                   f"connection {connection.name} has no active credential; store a secret first"))
        return finish()
    unbound = _origin_refusal(connection, cred)
    if unbound:
        tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, "secret_not_for_this_host", unbound))
        return finish(cred)
    try:
        secret = reveal(cred)
    except SecretUnavailable as exc:
        tries.append(call.not_sent(1, Outcome.NETWORK_ERROR, "secret_unavailable", str(exc)))
        return finish(cred)
    call.redactor = Redactor(provider.secret_values(secret), provider.composite_values(secret))

    if provider.needs_session(secret, call.options, spec):
        from .sessions import session_login

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
        t = _attempt(call, number, cred, secret)
        tries.append(t)
        if t.ok or not t.sent:
            break
        if not explicit and not swapped and provider.rejects_secret(t.status, t.error):
            # A rotation may have finished while this request was in flight with the old secret:
            # retry ONCE with the new active one (DESIGN.md, rotation). A rejection without a new
            # secret to try (a wrong password, a 403 for a service the token may not use): never.
            fresh = _active_credential(connection)
            if fresh is not None and fresh.pk != cred.pk and not _origin_refusal(connection, fresh):
                try:
                    secret = reveal(fresh)
                except SecretUnavailable:
                    break
                cred, swapped = fresh, True
                call.redactor = call.redactor.extend(provider.secret_values(secret), provider.composite_values(secret))
                continue
        if t.auth_failed and spec.auth == "default" and provider.has_session(secret):
            from .sessions import session_forget

            session_forget(credential=cred)  # the next call logs in afresh
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


def _result(call: _Call, tries: list[_Try], cred: Credential | None) -> Result:
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
    )


# ----------------------------------------------------------------------------- one attempt


class _BodyTooSlow(Exception):
    pass


def _read_body(resp: requests.Response, cap: int, deadline: float) -> tuple[bytes, bool]:
    """At most `cap` bytes of the body (and whether there was more), within `deadline`."""
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            resp.close()  # do not drain the rest: drop the connection instead
            return b"".join(chunks)[:cap], True
        if time.monotonic() > deadline:
            resp.close()
            raise _BodyTooSlow
    return b"".join(chunks), False


@sensitive_variables()
def _attempt(call: _Call, number: int, cred: Credential, secret: dict) -> _Try:
    provider, spec, connection = call.provider, call.spec, call.connection
    plan = provider.throttle_plan(connection_id=connection.pk, fingerprint=cred.fingerprint)
    limiter = get_limiter()
    # Each try gets the configured timeouts, cut to what is left of the operation's deadline.
    left = max(call.remaining(), MIN_TRY_SECONDS)
    connect_timeout = min(settings.OUTBOUND_CONNECT_TIMEOUT, left)
    read_timeout = min(settings.OUTBOUND_READ_TIMEOUT, left)
    cut = read_timeout < settings.OUTBOUND_READ_TIMEOUT
    permit = limiter.acquire(plan, max_wait=min(call.max_wait, max(0.0, left - MIN_TRY_SECONDS)),
                             lease_seconds=connect_timeout + 2 * read_timeout + call.max_wait + 5)
    if not permit.ok:
        t = call.not_sent(number, Outcome.THROTTLED, "throttled", permit.message, blocked_until=permit.blocked_until,
                          details={"reason": permit.reason, "waited_s": round(permit.waited, 3)})
        if permit.blocked_until:
            _update_snapshot(connection, RateLimitInfo(), permit.blocked_until)
        return t

    started_at = timezone.now()
    t0 = time.monotonic()
    prepared = None
    try:
        out = Outbound(method=spec.method.upper(), url=call.url, headers=dict(spec.headers or {}),
                       params=dict(spec.params or {}), json=copy.deepcopy(spec.json),
                       data=copy.deepcopy(spec.data), auth=spec.auth)
        provider.authenticate(out, secret, call.options)
        session = transport.session()
        prepared = session.prepare_request(requests.Request(
            out.method, out.url, headers=out.headers, params=out.params or None, json=out.json,
            data=out.data if out.data not in ({}, None) else None))
        call.sent_url = prepared.url
        resp = session.send(prepared, stream=True, timeout=(connect_timeout, read_timeout), allow_redirects=False)
        try:
            body, truncated = _read_body(resp, settings.OUTBOUND_MAX_BODY_BYTES, t0 + connect_timeout + read_timeout)
        except _BodyTooSlow:
            t = _Try(outcome=Outcome.TIMEOUT, status=resp.status_code, maybe_delivered=True,
                     error=ErrorInfo(code="read_timeout",
                                     message=f"the answer was still arriving after {read_timeout:g} s; gave up"))
            t.duration_ms = int((time.monotonic() - t0) * 1000)
            return call.record(number, t, started_at=started_at, request_excerpt=_request_excerpt(call, prepared))
    except (requests.exceptions.RequestException, OSError, ValueError, guard.Refused) as exc:
        # ValueError/UnicodeError: a header value http.client cannot encode (never sent).
        # guard.Refused: the name resolved to a refused address when the socket opened (rebinding).
        target = guard.parse(call.url)
        failure = transport.classify(exc, target.host if isinstance(target, guard.Target) else "the vendor")
        message = failure.message
        if cut and failure.code == "read_timeout":
            message = (f"no answer within {read_timeout:.1f} s, what was left of this operation's "
                       f"{call.deadline_s:g} s deadline; the vendor may have processed the request")
        t = _Try(outcome=failure.outcome, maybe_delivered=failure.maybe_delivered, sent=failure.category != "refused",
                 error=ErrorInfo(code=failure.code, message=message, details={"category": failure.category}),
                 duration_ms=int((time.monotonic() - t0) * 1000))
        return call.record(number, t, started_at=started_at,
                           request_excerpt=_request_excerpt(call, prepared) if prepared is not None else "")
    finally:
        limiter.release(permit)

    duration_ms = int((time.monotonic() - t0) * 1000)
    t = _classify(call, resp, body, truncated)
    t.duration_ms = duration_ms
    # The vendor's words travel on to health, audit and JSON columns: make them storable.
    t.error = ErrorInfo(code=storable(t.error.code), message=storable(t.error.message),
                        request_id=storable(t.error.request_id), details=storable(t.error.details))
    t.rate.bucket = storable(t.rate.bucket)
    now = time.time()
    until = provider.block_until(t.status, t.rate, now)
    if until and until > now and plan.block_scope:
        limiter.block(plan.block_scope, until - now)
        t.blocked_until = until
    _update_snapshot(connection, t.rate, t.blocked_until, throttled=t.status == 429)
    if t.data is not None:
        found = provider.response_secrets(t.data)
        if found:
            call.redactor = call.redactor.extend(found)
    return call.record(number, t, started_at=started_at, request_excerpt=_request_excerpt(call, prepared),
                       response_excerpt=_response_excerpt(call, resp, body, truncated, parsed=t.data is not None))


def _classify(call: _Call, resp: requests.Response, body: bytes, truncated: bool) -> _Try:
    provider = call.provider
    content_type_full = resp.headers.get("Content-Type", "")
    content_type = content_type_full.split(";")[0].strip().lower()
    kind = media_kind(content_type, body)
    charset = resp.encoding if "charset" in content_type_full.lower() else "utf-8"
    try:
        text = body.decode(charset or "utf-8", "replace")
    except LookupError:
        text = body.decode("utf-8", "replace")
    data, parse_error = (None, "") if truncated else parse_body(content_type, body, text)
    reply = Reply(status=resp.status_code, headers=resp.headers, content_type=content_type, body=body, text=text,
                  data=data, parse_error=parse_error, truncated=truncated)
    rate = provider.rate_limit(reply, time.time())
    t = _Try(outcome=Outcome.OK, status=resp.status_code, rate=rate, data=data, headers=resp.headers,
             content_type=content_type_full)
    expect = call.spec.expect or provider.accepts(call.options)
    expected_kinds = {media_kind(e, b"x") for e in expect}
    status = resp.status_code
    cap_kb = settings.OUTBOUND_MAX_BODY_BYTES // 1024
    what = content_type or "no Content-Type"

    def fail(code: str, message: str, outcome: str = Outcome.HTTP_ERROR) -> _Try:
        t.outcome = outcome
        t.error = ErrorInfo(code=code, message=message, request_id=provider.request_id(reply))
        return t

    if 300 <= status < 400:
        location = resp.headers.get("Location", "")
        return fail("redirect", f"HTTP {status} redirect to {location or '(no Location)'}: not followed "
                                "(Switchboard sends credentials only to the configured base URL)")
    if 200 <= status < 300:
        if truncated:
            return fail("body_too_large", f"the answer ({what}) is larger than {cap_kb} KB; only the first "
                                          f"{cap_kb} KB were read and it was not parsed")
        if parse_error:
            return fail(f"malformed_{kind}", f"the answer says {what} but is not valid {kind.upper()}: {parse_error}")
        if kind != "empty" and "*" not in expect and kind not in expected_kinds:
            summary = provider.error_message(reply) if kind in ("html", "text") else ""
            return fail("unexpected_content_type",
                        f"expected {' or '.join(expect)} but the answer is {what}" + (f" ({summary})" if summary else ""))
    if provider.is_success(reply):
        t.error = ErrorInfo(request_id=provider.request_id(reply))
        return t
    t.error = provider.parse_error(reply)
    if truncated:
        t.error.details["truncated_at_bytes"] = settings.OUTBOUND_MAX_BODY_BYTES
    t.outcome = Outcome.THROTTLED if status == 429 else Outcome.HTTP_ERROR
    t.auth_failed = provider.is_auth_failure(status, t.error)
    return t


def _request_excerpt(call: _Call, prepared: requests.PreparedRequest) -> str:
    head = f"{prepared.method} {redact_url(prepared.url, call.redactor)}"
    return excerpt(head, header_lines(prepared.headers, call.redactor), prepared.body, call.redactor)


# Answers that carry new secrets: when such a body cannot be parsed, the secrets in it cannot be
# found and redacted, so its text is not logged at all (only its size).
SECRET_BEARING_OPERATIONS = ("refresh", "login")


def _response_excerpt(call: _Call, resp: requests.Response, body: bytes, truncated: bool, parsed: bool) -> str:
    head = f"HTTP {resp.status_code} {resp.reason or ''}".rstrip()
    lines = header_lines(resp.headers, call.redactor, only=RESPONSE_HEADERS_LOGGED)
    if call.operation in SECRET_BEARING_OPERATIONS and not parsed and body.strip():
        return excerpt(head, lines, f"[{len(body)} bytes not shown: an unreadable {call.operation} answer may "
                                    "carry a secret]", call.redactor)
    return excerpt(head, lines, body, call.redactor, total=len(body) if not truncated else None)


# ----------------------------------------------------------------------------- rate-limit snapshot

_snapshot_written: dict[int, float] = {}
_snapshot_urgent: set[int] = set()  # connections whose last written snapshot was a 429, a block or none left
SNAPSHOT_EVERY = 1.0  # seconds: the page's headroom does not need every response's figure


def _update_snapshot(connection: Connection, rate: RateLimitInfo, blocked_until: float | None, *,
                     throttled: bool = False) -> None:
    """Denormalise the latest rate-limit signals onto the connection (at most once a second,
    unless something an operator must see happened: a 429, a block, or the budget running out)."""
    urgent = throttled or blocked_until is not None or rate.remaining == 0 or rate.retry_after is not None
    if not rate and not urgent:
        return
    now = time.monotonic()
    recovering = connection.pk in _snapshot_urgent  # the page says "none left": correct it at once
    if not urgent and not recovering and now - _snapshot_written.get(connection.pk, -1e9) < SNAPSHOT_EVERY:
        return
    _snapshot_written[connection.pk] = now
    (_snapshot_urgent.add if urgent else _snapshot_urgent.discard)(connection.pk)
    fields: dict[str, Any] = {"rl_observed_at": timezone.now()}
    if rate.limit is not None:
        fields["rl_limit"] = rate.limit
    if rate.remaining is not None:
        fields["rl_remaining"] = rate.remaining
    if rate.reset_at is not None:
        fields["rl_reset_at"] = datetime.fromtimestamp(rate.reset_at, UTC)
    if rate.bucket:
        fields["rl_bucket"] = rate.bucket
    if throttled and rate.remaining is None:
        # A 429 without rate headers (VENDORS.md edge case 4) still says: nothing left now. Keep no
        # older reset either, or the page would count the budget as back once that time passed.
        fields["rl_remaining"] = 0
        if rate.reset_at is None:
            fields["rl_reset_at"] = None
    if blocked_until is not None:
        fields["blocked_until"] = datetime.fromtimestamp(blocked_until, UTC)
    Connection.objects.filter(pk=connection.pk).update(**fields)
    for name, value in fields.items():
        setattr(connection, name, value)
