"""Connection tests and ad-hoc calls through the one outbound client.

connection_test() runs the provider's cheapest safe test (shared/VENDORS.md), then records on
the connection what pages show: health (ok; degraded when slow or intermittent; failing;
suspended for a suspended CloverDX server; needs_attention belongs to rotation), the reason,
last_test_at/last_ok_at and last_test_result. After an authentication failure scheduled tests
pause (vendors lock accounts after 3 to 5 failures) until the secret changes
(vault.credential_activate) or an operator resumes them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import Connection, Health, Outcome
from ..providers.http import RequestSpec
from .audit import Actor, audit

HISTORY = 5  # tests remembered to tell "intermittent" from "ok"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_REPEAT = 1000


def _send(connection: Connection, spec: RequestSpec, **kwargs):
    from ..outbound import client

    return client.send(connection, spec, **kwargs)


def send_test(connection: Connection, options: dict, *, actor: Actor, task_id: str = "", credential=None):
    """Send the provider's test steps (`test_requests`) in order through the client, with the
    active credential or `credential` (a staged one being verified). A failing step its
    `stops_on` names ends the test; the answer is the last step's Result, with the time of them all."""
    started = time.monotonic()
    result = None
    for step in connection.provider_obj.test_requests(options):
        result = _send(connection, step.spec, actor=actor, operation="test", task_id=task_id, credential=credential)
        if step.ends_test(result):
            break
    # What the operator waited: every request of the test (CloverDX makes two), retries and waits included.
    return dataclasses.replace(result, duration_ms=int((time.monotonic() - started) * 1000))


def connection_test(*, connection: Connection, actor: Actor, task_id: str = ""):
    """Run the connection's test now; record health and the result; return the client's Result."""
    options = connection.effective_options()
    result = send_test(connection, options, actor=actor, task_id=task_id)
    record_test_result(connection=connection, result=result, proves=connection.provider_obj.describe_test(options))
    audit(actor=actor, action="connection.test", connection=connection,
          details={"ok": result.ok, "status_code": result.status_code, "duration_ms": result.duration_ms,
                   "outcome": str(result.outcome), "error_code": result.error_code,
                   "vendor_request_id": result.vendor_request_id, "health": connection.health,
                   "task_id": task_id})
    return result


def record_test_result(*, connection: Connection, result, proves: str = "") -> Connection:
    """Health and the last result from a test's Result (row-locked against concurrent tests)."""
    now = timezone.now()
    with transaction.atomic():
        current = Connection.objects.select_for_update().get(pk=connection.pk)
        previous = current.last_test_result or {}
        history = list(previous.get("history") or [])
        summary = {**result.summary(), "outcome": str(result.outcome), "attempts": result.attempts,
                   "at": now.isoformat(), "proves": proves}
        if summary["error"] and result.error_details.get("support_until"):
            summary["error"]["support_until"] = result.error_details["support_until"]
        fields: dict = {"last_test_at": now}
        not_sent = result.outcome == Outcome.THROTTLED and result.status_code is None
        if not_sent:
            # Nothing reached the vendor: say so, but this proves nothing about its health.
            summary["history"] = history
            summary["not_sent"] = True
            fields["health_reason"] = f"The last test was not sent: {result.error_message}"[:500]
        else:
            history = (history + [bool(result.ok)])[-HISTORY:]
            summary["history"] = history
            health, reason = _health(result, history)
            if result.ok:
                fields["last_ok_at"] = now
            keep_attention = current.health == Health.NEEDS_ATTENTION and not (
                result.ok and _new_secret_since(current))
            if not keep_attention:
                fields["health"], fields["health_reason"] = health, reason[:500]
                if health != current.health:
                    fields["health_changed_at"] = now
            if result.auth_failed and not current.tests_paused:
                fields.update(tests_paused=True, paused_at=now, paused_reason=_pause_reason(result, now)[:300])
        fields["last_test_result"] = summary
        Connection.objects.filter(pk=current.pk).update(**fields)
    for name, value in fields.items():
        setattr(connection, name, value)
    return connection


def _health(result, history: list[bool]) -> tuple[str, str]:
    if result.ok:
        slow_ms = settings.CONNECTION_TEST_SLOW_MS
        failures = history.count(False)
        if result.last_attempt_ms > slow_ms:  # the vendor's answer time, not our retries' waits
            return Health.DEGRADED, f"Slow: the vendor took {result.last_attempt_ms} ms to answer (over {slow_ms} ms)."
        if failures:
            return Health.DEGRADED, (f"Intermittent: {failures} of the last {len(history)} tests failed; "
                                     "the latest passed.")
        return Health.OK, ""
    if result.error_code == "suspended":
        return Health.SUSPENDED, result.error_message or "The server is suspended."
    what = f"HTTP {result.status_code}" if result.status_code else str(result.outcome).replace("_", " ")
    code = f" {result.error_code}" if result.error_code else ""
    message = f": {result.error_message}" if result.error_message else ""
    req = f" (vendor request id {result.vendor_request_id})" if result.vendor_request_id else ""
    return Health.FAILING, f"{what}{code}{message}{req}"


def _pause_reason(result, now) -> str:
    return (f"Scheduled tests are paused to avoid an account lockout: the vendor rejected the credential "
            f"(HTTP {result.status_code}) at {now:%Y-%m-%d %H:%M} UTC. Replace the secret, or resume tests once "
            "the account is fixed.")


def _new_secret_since(connection: Connection) -> bool:
    """Was a credential activated after the connection was flagged needs_attention?"""
    active = connection.credentials.active().only("activated_at").first()
    since = connection.health_changed_at
    return bool(active and active.activated_at and since and active.activated_at > since)


def connection_resume_tests(*, connection: Connection, actor: Actor) -> Connection:
    """Lift the account-lockout pause on scheduled tests (an operator's decision)."""
    if not connection.tests_paused:
        return connection
    reason = connection.paused_reason
    Connection.objects.filter(pk=connection.pk).update(tests_paused=False, paused_reason="", paused_at=None)
    connection.tests_paused, connection.paused_reason, connection.paused_at = False, "", None
    audit(actor=actor, action="connection.tests_resumed", connection=connection, details={"was": reason})
    return connection


@dataclass
class ScheduledOutcome:
    ran: bool
    reason: str = ""
    ok: bool | None = None


def connection_scheduled_test(*, connection_id: int, task_id: str = "") -> ScheduledOutcome:
    """The beat's periodic test: skipped for deleted, disabled or paused connections."""
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return ScheduledOutcome(False, "deleted")
    if not connection.enabled:
        return ScheduledOutcome(False, "disabled")
    if connection.tests_paused:
        return ScheduledOutcome(False, "paused: " + connection.paused_reason)
    result = connection_test(connection=connection, actor=Actor.schedule(), task_id=task_id)
    return ScheduledOutcome(True, ok=result.ok)


class CallError(ValueError):
    """Bad input for connection_call (nothing was sent)."""


def connection_call(*, connection: Connection, method: str, path: str, data: object = None, actor: Actor,
                    repeat: int = 1, task_id: str = "") -> list:
    """Send one request (or `repeat` of them, one after another, throttled like any other) and
    return the Results. `data` is a JSON value: the query for GET/DELETE, the JSON body otherwise."""
    method = (method or "").upper()
    if method not in METHODS:
        raise CallError(f"method must be one of {', '.join(METHODS)}")
    if not path or "://" in path.split("?", 1)[0]:
        raise CallError("path must be relative to the connection's base URL, e.g. /connection/test")
    try:
        protected = connection.provider_obj.is_protected(connection.base_url, path)
    except ValueError as exc:
        raise CallError(str(exc)) from None
    if protected:
        raise CallError(f"{path} is the vendor's refresh endpoint: it would rescind the current secret; "
                        "use `connections rotate` instead")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise CallError(f"repeat must be between 1 and {MAX_REPEAT}")
    if method in ("GET", "DELETE") and data is not None:
        if not isinstance(data, dict):
            raise CallError("data for GET and DELETE must be a JSON object (sent as the query string)")
        spec = RequestSpec(method, path, params=data)
    else:
        spec = RequestSpec(method, path, json=data)
    results = [_send(connection, spec, actor=actor, operation="call", task_id=task_id) for _ in range(repeat)]
    audit(actor=actor, action="connection.call", connection=connection,
          details={"method": method, "path": path[:300], "repeat": repeat,
                   "ok": sum(1 for r in results if r.ok), "last_status": results[-1].status_code})
    return results
