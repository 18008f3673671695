"""The records of one send(): its Result (what callers get), each attempt (Try) and the state its
attempts share (Call), which writes one RequestLog row per attempt (redacted, storable)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.db import Error as DatabaseErrors
from django.db import connections as db_connections
from django.utils import timezone
from requests.structures import CaseInsensitiveDict

from ..models import Connection, Outcome, RequestLog
from ..providers.http import ErrorInfo, RateLimitInfo, RequestSpec
from . import logrows
from .commits import fast_commit
from .redaction import Redactor, redact_url

log = logging.getLogger(__name__)


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
    body: bytes = b""  # the last answer's raw body (at most max_body bytes; the proxy passes it on)
    body_truncated: bool = False
    redactor: Redactor | None = field(default=None, repr=False)  # masks this send's secrets

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


@dataclass
class Try:
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
    body: bytes = b""
    truncated: bool = False
    stale: bool = False  # not tried: the kept credential it was given changed (attempt.py); never recorded

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK


class Call:
    """State shared by the attempts of one send()."""

    def __init__(self, connection: Connection, spec: RequestSpec, *, actor, operation: str, task_id: str,
                 max_wait: float | None, max_body: int | None = None):
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
        self.max_body = max_body or settings.OUTBOUND_MAX_BODY_BYTES

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

    def record(self, attempt: int, t: Try, *, started_at: datetime, request_excerpt: str = "",
               response_excerpt: str = "") -> Try:
        r = self.redactor
        t.log_id = insert_log(
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
            application=getattr(self.actor, "application", "")[:64],
        )
        return t

    def not_sent(self, attempt: int, outcome: str, code: str, message: str, *, blocked_until: float | None = None,
                 details: dict | None = None) -> Try:
        t = Try(outcome=outcome, error=ErrorInfo(code=code, message=message, details=details or {}),
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


# Values storable() returns as they are (no text, no JSON): most of a row's.
_STORABLE = frozenset({int, bool, type(None), datetime, uuid.UUID})


def insert_log(**fields) -> int | None:
    """Write one RequestLog row; its id. Outside a caller's transaction the commit does not wait for
    the disk (commits.fast_commit): a power cut may lose the last fraction of a second of log rows,
    never corrupt them, and every send saves the fsync. Credentials and the rotation journal keep
    durable commits. The rollup trigger (rollups.py) counts the row in the same transaction. On
    PostgreSQL outside a transaction the row is sent behind: in the server's socket when this
    returns, committed by the server even if this process dies next, its answer read at the
    connection's next use (a failure is logged then, as below); the id was reserved beforehand
    (logrows.py, dashboard/pgbackend)."""
    fields = {name: value if type(value) in _STORABLE else storable(value) for name, value in fields.items()}
    from ..metrics import request_logged

    request_logged(fields)  # Prometheus counters: one hook, beside the one place rows are written
    try:
        conn = db_connections[DEFAULT_DB_ALIAS]
        if conn.vendor == "postgresql" and not conn.in_atomic_block:
            if logrows.can_write_behind(conn):
                return logrows.insert_behind(conn, fields)
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
