"""The probe: after a refresh whose answer was lost, ask the OLD secret whether it still works
(a cheap authenticated call that rotates nothing), and the words an operator gets from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..models import Connection, Credential, RotationAttempt
from ..outbound.client import send
from ..providers.http import ErrorInfo
from ..services.audit import Actor
from .core import utc


@dataclass
class Probe:
    verdict: str  # alive | rejected | inconclusive | unavailable
    detail: str
    vendor_request_id: str = ""


def probe_old(*, connection: Connection, credential: Credential, actor: Actor, task_id: str = "") -> Probe:
    """Is the OLD secret still accepted? A cheap authenticated call that does not rotate anything.

    The provider names the call (`probe_request`); the refresh endpoint is never a probe, nor is a
    call that does not check the secret (Cleanlist's pub_echo). The provider's rejects_secret()
    says which answers mean "rejected" (Cleanlist: 401 and 403 alike, VENDORS.md).
    """
    provider = connection.provider_obj
    spec = provider.probe_request(credential.reveal(), connection.effective_options())
    if spec is None:
        return Probe("unavailable", f"{provider.label} has no call that checks this secret without rotating it "
                                    "for this connection" + probe_hint_text(connection))
    result = send(connection, spec, actor=actor, operation="probe", credential=credential, retry=False,
                  task_id=task_id)
    status = result.status_code
    where = f"{spec.method} {spec.path}"
    if provider.rejects_secret(status, error_info(result)):
        return Probe("rejected", f"{where} with the old secret answered {status}", result.vendor_request_id)
    # Accepted: a success, or a readable vendor answer past authentication (e.g. a 400 about the body).
    # A 2xx or 4xx whose body cannot be read (a proxy's page, a garbled answer) proves nothing.
    if result.ok or (status is not None and status < 500 and status != 429 and result.data is not None):
        return Probe("alive", f"{where} with the old secret answered {status}", result.vendor_request_id)
    return Probe("inconclusive", f"{where} with the old secret: {describe_result(result)}", result.vendor_request_id)


def error_info(result) -> ErrorInfo:
    return ErrorInfo(code=result.error_code, message=result.error_message, request_id=result.vendor_request_id)


def probe_hint_text(connection: Connection) -> str:
    hint = connection.provider_obj.probe_hint
    return f" ({hint})" if hint else ""


def describe_result(result) -> str:
    if result.status_code is None:
        return f"no answer ({result.outcome}: {result.error_message or 'network error'})"
    bits = [f"HTTP {result.status_code}"]
    if result.error_code:
        bits.append(result.error_code)
    if result.error_message:
        bits.append(result.error_message.rstrip(" ."))  # callers end the sentence ("… token. The current …")
    return " ".join(bits)


def lost_answer_advice(*, connection: Connection, attempt: RotationAttempt, when, probe: Probe | None = None) -> str:
    """The needs_attention message (fits health_reason): what happened, when, the request ids, what to do."""
    provider = connection.provider_obj
    ids = []
    if attempt.vendor_request_id:
        ids.append(f"refresh request id {attempt.vendor_request_id}")
    if probe is not None and probe.vendor_request_id:
        ids.append(f"probe request id {probe.vendor_request_id}")
    if provider.reauthorize_advice:
        return (f"The {provider.label} refresh at {utc(when)} may have rotated the secret but its answer was lost: "
                f"the old secret is now rejected{' (' + '; '.join(ids) + ')' if ids else ''}. Action: "
                + provider.reauthorize_advice.format(name=connection.name) + ". Do not refresh again.")
    keeps = ""
    if provider.support_keeps_days:  # only a figure the vendor documents (TeleTracker: about two weeks)
        keep_until = (when + timedelta(days=provider.support_keeps_days)).strftime("%Y-%m-%d")
        keeps = f" (they keep request data until about {keep_until})"
    return (f"The {provider.label} refresh at {utc(when)} rotated the secret but its answer was lost: the old "
            f"secret is now rejected{' (' + '; '.join(ids) + ')' if ids else ''}. Action: ask {provider.label} "
            f"support to issue a new {provider.label} secret, quoting that time{keeps}, then "
            f"paste it (Rotate, or `connections rotate {connection.name} --stdin`). Do not refresh again.")
