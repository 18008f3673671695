"""One attempt of a send(): throttle, authenticate, send with timeouts and no redirects, read a
capped body, classify the answer, record it, and keep the connection's rate-limit snapshot."""

from __future__ import annotations

import copy
import logging
import time

import redis
import requests
from django.conf import settings
from django.db import Error as DatabaseErrors
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from ..models import Credential, Outcome
from ..providers.http import ErrorInfo, Outbound, RateLimitInfo, Reply, media_kind, parse_body
from . import guard, transport
from .call import Call, Try, storable
from .redaction import excerpt, header_lines, redact_url
from .snapshot import update_snapshot
from .throttle import get_limiter
from .throttle_seed import window_seed

RESPONSE_HEADERS_LOGGED = ("content-type", "content-length", "retry-after", "location", "www-authenticate",
                           "x-request-id", "request-id")
# A try (or a retry's wait) is not started with less than this left of the operation's deadline.
log = logging.getLogger(__name__)

MIN_TRY_SECONDS = 0.2
# What a limiter outage raises: Redis's errors, or the database's for the DatabaseLimiter.
LIMITER_ERRORS = (redis.exceptions.RedisError, DatabaseErrors, OSError)


class BodyTooSlow(Exception):
    pass


def read_body(resp: requests.Response, cap: int, deadline: float) -> tuple[bytes, bool]:
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
            raise BodyTooSlow
    return b"".join(chunks), False


@sensitive_variables()
def attempt(call: Call, number: int, cred: Credential, secret: dict, check: tuple | None = None) -> Try:
    """One try. `check`: `cred` was kept in this process and not yet checked (credrows.kept); the
    limiter admits the try only while it is current, else the Try comes back `stale`: nothing was
    sent or recorded, and the caller reads the credential again."""
    provider, spec, connection = call.provider, call.spec, call.connection
    plan = provider.throttle_plan(connection_id=connection.pk, fingerprint=cred.fingerprint)
    limiter = get_limiter()
    # Each try gets the configured timeouts, cut to what is left of the operation's deadline.
    left = max(call.remaining(), MIN_TRY_SECONDS)
    connect_timeout = min(settings.OUTBOUND_CONNECT_TIMEOUT, left)
    read_timeout = min(settings.OUTBOUND_READ_TIMEOUT, left)
    cut = read_timeout < settings.OUTBOUND_READ_TIMEOUT
    staged: dict = {}

    def stage() -> None:
        """Authenticate and prepare the request, once; run while the limiter's decision travels
        (Limiter.acquire's `meanwhile`), else right after it. A failure is kept for the send below."""
        if staged:
            return
        try:
            out = Outbound(method=spec.method.upper(), url=call.url, headers=dict(spec.headers or {}),
                           params=dict(spec.params or {}),
                           json=None if spec.json is None else copy.deepcopy(spec.json),
                           data=None if spec.data is None else copy.deepcopy(spec.data), auth=spec.auth)
            provider.authenticate(out, secret, call.options)
            staged["prepared"] = transport.prepare(out.method, out.url, headers=out.headers, params=out.params,
                                                   json=out.json, data=out.data if out.data not in ({}, None) else None)
        except Exception as exc:  # noqa: BLE001 - raised again where the send handles it
            staged["error"] = exc

    try:
        permit = limiter.acquire(plan, max_wait=min(call.max_wait, max(0.0, left - MIN_TRY_SECONDS)),
                                 lease_seconds=connect_timeout + 2 * read_timeout + call.max_wait + 5,
                                 seed=window_seed(connection, cred, plan), check=check, meanwhile=stage)
    except LIMITER_ERRORS as exc:
        if check is not None:  # the kept credential could not be checked: read it, then decide
            return Try(outcome=Outcome.THROTTLED, sent=False, stale=True)
        # Redis (or the database holding the limiter) is unreachable: nothing was sent, so nothing
        # at the vendor changed. Said plainly; a refresh settles as failed, not unknown.
        return call.not_sent(number, Outcome.THROTTLED, "limiter_unavailable",
                             f"not sent: the rate limiter could not be reached ({type(exc).__name__}); "
                             "nothing reached the vendor", details={"reason": "limiter_unavailable"})
    if permit.reason == "stale":
        return Try(outcome=Outcome.THROTTLED, sent=False, stale=True)
    if not permit.ok:
        t = call.not_sent(number, Outcome.THROTTLED, "throttled", permit.message, blocked_until=permit.blocked_until,
                          details={"reason": permit.reason, "waited_s": round(permit.waited, 3)})
        if permit.blocked_until:
            update_snapshot(connection, RateLimitInfo(), permit.blocked_until)
        return t

    started_at = timezone.now()
    t0 = time.monotonic()
    prepared = None
    early: dict = {}

    def early_excerpt() -> None:
        """The request's excerpt, made while the vendor answers (transport.send's meanwhile)."""
        try:
            early["text"], early["redactor"] = request_excerpt(call, prepared), call.redactor
        except Exception:  # noqa: BLE001 - made again, where it is used, with the error raised there
            early.clear()

    def sent_excerpt() -> str:
        # Made again if the redactor learnt a secret since (a response's new token).
        if early and early["redactor"] is call.redactor:
            return early["text"]
        return request_excerpt(call, prepared)

    try:
        stage()
        if "error" in staged:
            raise staged["error"]
        prepared = staged["prepared"]
        call.sent_url = prepared.url
        resp = transport.send(prepared, timeout=(connect_timeout, read_timeout), meanwhile=early_excerpt)
        try:
            body, truncated = read_body(resp, call.max_body, t0 + connect_timeout + read_timeout)
        except BodyTooSlow:
            t = Try(outcome=Outcome.TIMEOUT, status=resp.status_code, maybe_delivered=True,
                     error=ErrorInfo(code="read_timeout",
                                     message=f"the answer was still arriving after {read_timeout:g} s; gave up"))
            t.duration_ms = int((time.monotonic() - t0) * 1000)
            return call.record(number, t, started_at=started_at, request_excerpt=sent_excerpt())
    except (requests.exceptions.RequestException, OSError, ValueError, guard.Refused) as exc:
        # ValueError/UnicodeError: a header value http.client cannot encode (never sent).
        # guard.Refused: the name resolved to a refused address when the socket opened (rebinding).
        target = guard.parse(call.url)
        failure = transport.classify(exc, target.host if isinstance(target, guard.Target) else "the vendor")
        message = failure.message
        if cut and failure.code == "read_timeout":
            message = (f"no answer within {read_timeout:.1f} s, what was left of this operation's "
                       f"{call.deadline_s:g} s deadline; the vendor may have processed the request")
        t = Try(outcome=failure.outcome, maybe_delivered=failure.maybe_delivered, sent=failure.category != "refused",
                 error=ErrorInfo(code=failure.code, message=message, details={"category": failure.category}),
                 duration_ms=int((time.monotonic() - t0) * 1000))
        return call.record(number, t, started_at=started_at,
                           request_excerpt=sent_excerpt() if prepared is not None else "")
    finally:
        _quietly(limiter.release, permit)  # a lease left behind expires on its own

    duration_ms = int((time.monotonic() - t0) * 1000)
    t = classify(call, resp, body, truncated)
    t.duration_ms, t.body, t.truncated = duration_ms, body, truncated
    # The vendor's words travel on to health, audit and JSON columns: make them storable.
    t.error = ErrorInfo(code=storable(t.error.code), message=storable(t.error.message),
                        request_id=storable(t.error.request_id), details=storable(t.error.details))
    t.rate.bucket = storable(t.rate.bucket)
    now = time.time()
    until = provider.block_until(t.status, t.rate, now)
    if until and until > now and plan.block_scope:
        _quietly(limiter.block, plan.block_scope, until - now)
        t.blocked_until = until
    update_snapshot(connection, t.rate, t.blocked_until, throttled=t.status == 429)
    if t.data is not None:
        found = provider.response_secrets(t.data)
        if found:
            call.redactor = call.redactor.extend(found)
    return call.record(number, t, started_at=started_at, request_excerpt=sent_excerpt(),
                       response_excerpt=response_excerpt(call, resp, body, truncated, parsed=t.data is not None))


def _quietly(action, *args) -> None:
    """Release a lease or set a block; once the request was sent, a limiter outage must not turn
    the vendor's answer (a refresh's new secret) into an exception."""
    try:
        action(*args)
    except LIMITER_ERRORS as exc:
        log.warning("rate limiter unreachable after sending (%s); its lease or block is dropped", type(exc).__name__)


def classify(call: Call, resp: requests.Response, body: bytes, truncated: bool) -> Try:
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
    t = Try(outcome=Outcome.OK, status=resp.status_code, rate=rate, data=data, headers=resp.headers,
             content_type=content_type_full)
    expect = call.spec.expect or provider.accepts(call.options)
    expected_kinds = {media_kind(e, b"x") for e in expect}
    status = resp.status_code
    cap_kb = settings.OUTBOUND_MAX_BODY_BYTES // 1024
    what = content_type or "no Content-Type"

    def fail(code: str, message: str, outcome: str = Outcome.HTTP_ERROR) -> Try:
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


def request_excerpt(call: Call, prepared: requests.PreparedRequest) -> str:
    head = f"{prepared.method} {redact_url(prepared.url, call.redactor)}"
    return excerpt(head, header_lines(prepared.headers, call.redactor), prepared.body, call.redactor)


# Answers that carry new secrets: when such a body cannot be parsed, the secrets in it cannot be
# found and redacted, so its text is not logged at all (only its size).
SECRET_BEARING_OPERATIONS = ("refresh", "login", "connect")


def response_excerpt(call: Call, resp: requests.Response, body: bytes, truncated: bool, parsed: bool) -> str:
    head = f"HTTP {resp.status_code} {resp.reason or ''}".rstrip()
    lines = header_lines(resp.headers, call.redactor, only=RESPONSE_HEADERS_LOGGED)
    if call.operation in SECRET_BEARING_OPERATIONS and not parsed and body.strip():
        return excerpt(head, lines, f"[{len(body)} bytes not shown: an unreadable {call.operation} answer may "
                                    "carry a secret]", call.redactor)
    return excerpt(head, lines, body, call.redactor, total=len(body) if not truncated else None)
