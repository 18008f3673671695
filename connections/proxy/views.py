"""/proxy/<connection>/<path>: the HTTP edge of the egress proxy (see the package docstring).

Every answer carries X-Switchboard-Request-Id. Answers Switchboard makes itself (not the vendor's)
are JSON `{"error": {"code", "message", "source": "switchboard"}}` with X-Switchboard-Error set
to the code; a 429 of Switchboard's own limiter also carries `X-Switchboard-Throttled: 1` and
Retry-After, so an application never mistakes it for the vendor's.
"""

from __future__ import annotations

import json
import math
import time
import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from ..models import Connection, Credential, Outcome
from ..outbound.client import send
from ..outbound.credrows import active_credential
from ..providers.http import ErrorInfo, RequestSpec
from ..services import appkeys
from ..services.audit import Actor, client_ip
from . import headers as hdrs
from .paths import BadPath, check_tail, check_within, raw_tail

OPERATION = "proxy"
READ_CHUNK = 64 * 1024
# A call retried with the new credential can meet the next rotation too when rotations follow each
# other faster than the call (seconds apart under load): at most this many retries, each with a
# newer credential than the last, never the same one twice.
MAX_ROTATION_RETRIES = 3
# Switchboard's own refusals for a send that was never answered (status None), by error code.
NOT_SENT_STATUS = {"bad_path": 400, "no_credential": 503, "secret_unavailable": 503,
                   "secret_not_for_this_host": 503, "outbound_refused": 502, "dns_failed": 502}


def _own(status: int, code: str, message: str, request_id: str, **extra_headers) -> HttpResponse:
    body = json.dumps({"error": {"code": code, "message": message, "source": "switchboard"}})
    response = HttpResponse(body, status=status, content_type="application/json")
    response["X-Switchboard-Request-Id"] = request_id
    response["X-Switchboard-Error"] = code
    response["Cache-Control"] = "no-store"
    for name, value in extra_headers.items():
        response[name.replace("_", "-")] = value
    return response


class _TooLarge(Exception):
    pass


def _read_body(request: HttpRequest) -> bytes:
    """The request body, at most PROXY_MAX_BODY_BYTES (else _TooLarge), read in chunks. A chunked
    body has no CONTENT_LENGTH, and Django would read none of it: read the server's stream."""
    limit = settings.PROXY_MAX_BODY_BYTES
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        if int(length) > limit:
            raise _TooLarge
        stream = request
    elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        stream = request.META["wsgi.input"]
    else:
        return b""
    chunks, size = [], 0
    while True:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)


def _authorize(header: str, name: str) -> appkeys.Grant:
    """appkeys.authorize, without Django's health check of the thread's kept database connection
    (CONN_HEALTH_CHECKS, dashboard/wsgi.py: a `SELECT 1` round trip before each request). The
    grant query is this request's first statement and only reads, so it checks the connection
    itself: if the connection died while kept (a database restart, an idle timeout), it is closed
    and the query sent once more on a new one, as the health check would have done."""
    db = connections[DEFAULT_DB_ALIAS]
    kept = db.connection is not None and db.health_check_enabled and not db.health_check_done
    if kept:
        db.health_check_done = True
    try:
        return appkeys.authorize(header, name)
    except (OperationalError, InterfaceError):
        if not kept or db.in_atomic_block:
            raise
        db.close()
        return appkeys.authorize(header, name)


def _await_rotation(connection: Connection, old_pk: int | None) -> Credential | None:
    """The credential that replaced `old_pk`: at once if a rotation already finished, after waiting
    (at most PROXY_ROTATION_WAIT) while one is in flight; None when no rotation is under way."""
    deadline = time.monotonic() + settings.PROXY_ROTATION_WAIT
    while True:
        fresh = active_credential(connection.pk)
        if fresh is not None and fresh.pk != old_pk:
            return fresh
        claimed = Connection.objects.filter(pk=connection.pk, rotation_claim__isnull=False).exists()
        if not claimed:
            # The rotation may have committed the new credential and released its claim between
            # the two reads: look once more (a rotation commits before it releases the claim).
            fresh = active_credential(connection.pk)
            return fresh if fresh is not None and fresh.pk != old_pk else None
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _scrub(body: bytes, redactor) -> bytes:
    """The vendor's body with any of this call's secrets masked (a vendor that echoes a token)."""
    if redactor is None or not body or not (redactor.values or redactor.whole):
        return body
    text = body.decode("latin-1")  # byte-preserving: only secret matches change
    cleaned = redactor(text)
    return body if cleaned == text else cleaned.encode("latin-1", "replace")


def _answer(result, request_id: str) -> HttpResponse:
    """The vendor's answer as it came (status, headers, body), or Switchboard's own when none came."""
    if result.status_code is None:
        if result.outcome == Outcome.THROTTLED:
            wait = 1.0
            if result.blocked_until is not None:
                wait = max(1.0, result.blocked_until.timestamp() - time.time())
            return _own(429, "switchboard_throttled",
                        f"Switchboard's shared rate limiter could not place this request within "
                        f"{settings.PROXY_MAX_WAIT:g} s ({result.error_message}); retry after the Retry-After seconds",
                        request_id, Retry_After=str(math.ceil(wait)), X_Switchboard_Throttled="1")
        code = result.error_code or "not_sent"
        status = 504 if result.outcome == Outcome.TIMEOUT else NOT_SENT_STATUS.get(code, 502)
        return _own(status, code, result.error_message or "the vendor could not be reached", request_id)
    if result.body_truncated:
        return _own(502, "response_too_large",
                    f"the vendor's answer is larger than {settings.PROXY_MAX_RESPONSE_BYTES} bytes "
                    "(PROXY_MAX_RESPONSE_BYTES); it was not passed on", request_id)
    response = HttpResponse(_scrub(result.body, result.redactor), status=result.status_code)
    del response["Content-Type"]
    redactor = result.redactor
    for name, value in hdrs.incoming(result.headers):
        response[name] = redactor(value) if redactor is not None else value
    response["X-Switchboard-Request-Id"] = request_id
    return response


@csrf_exempt
@login_not_required
def proxy(request: HttpRequest, name: str, rest: str = "") -> HttpResponse:
    request_id = uuid.uuid4().hex
    grant = _authorize(request.META.get("HTTP_AUTHORIZATION", ""), name)
    app, connection = grant.application, grant.connection
    if app is None:
        return _own(401, "unauthenticated", "send an application key: Authorization: Bearer sbk_... "
                    "(a key that is unknown, revoked or replaced by a rotation is refused)", request_id,
                    WWW_Authenticate='Bearer realm="switchboard-proxy"')
    method = request.method.upper()
    if connection is None:
        return _own(403, "not_in_scope", f"application {app.name} may not call connection {name!r}", request_id)
    if app.methods and method not in app.methods:
        return _own(403, "method_not_in_scope",
                    f"application {app.name} may use {', '.join(app.methods)} only, not {method}", request_id)
    if not connection.enabled:
        return _own(503, "connection_disabled", f"connection {name} is disabled in Switchboard", request_id)
    try:
        tail, query = raw_tail(request.META, request.path_info, name)
        path = check_tail(tail)
    except BadPath as exc:
        return _own(400, "bad_path", str(exc), request_id)
    provider = connection.provider_obj
    full = path + (f"?{query}" if query else "")
    try:
        url = provider.url_for(connection.base_url, full)
    except ValueError as exc:
        return _own(400, "bad_path", str(exc), request_id)
    problem = check_within(url, connection.base_url)
    if problem:
        return _own(400, "bad_path", problem, request_id)
    if provider.is_protected(connection.base_url, path):
        return _own(403, "protected_path", "this path rotates the credential at the vendor; only Switchboard's "
                    "rotation may call it (Rotate in Switchboard instead)", request_id)
    try:
        body = _read_body(request)
    except _TooLarge:
        return _own(413, "request_too_large", f"the request body is larger than {settings.PROXY_MAX_BODY_BYTES} "
                    "bytes (PROXY_MAX_BODY_BYTES); nothing was sent", request_id, Connection="close")

    spec = RequestSpec(method, full, headers=hdrs.outgoing(request.META), data=body or None, expect=("*",))
    actor = Actor(label=f"app:{app.name}", via="proxy", ip=client_ip(request), application=app.name)
    cred = grant.credential
    options = {"actor": actor, "operation": OPERATION, "task_id": request_id, "max_wait": settings.PROXY_MAX_WAIT,
               "max_body": settings.PROXY_MAX_RESPONSE_BYTES}
    result = send(connection, spec, credential=cred, **options)
    for _ in range(MAX_ROTATION_RETRIES):
        if result.status_code is None or cred is None or not provider.rejects_secret(
                result.status_code, ErrorInfo(code=result.error_code, message=result.error_message,
                                              request_id=result.vendor_request_id, details=result.error_details)):
            break
        # The call met a rotation: its secret was rescinded while it was on its way. Retry once with
        # the new one, waiting for a rotation still in flight to commit it (DESIGN.md, Rotation). Each
        # credential is tried once: a rejection with no newer credential is the vendor's answer.
        cred = _await_rotation(connection, cred.pk)
        if cred is None:
            break
        result = send(connection, spec, credential=cred, **options)
    appkeys.note_use(app=app)
    return _answer(result, request_id)

