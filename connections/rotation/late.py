"""A refresh that timed out may still land at the vendor after Switchboard's probe said "not rotated".

A read timeout (or a connection dropped after sending) means the vendor has the request and may
act on it later: a probe made at once can find the old secret accepted, and then the refresh
lands and rescinds it (the model-based test found this with a vendor that stalls). So such an
attempt ends `failed` with step `probed_alive_recheck`: until LATE grace has passed no refresh is
sent for that connection (another refresh with a secret about to be rescinded would be refused
and counted), and after it the old secret is probed again, by the next rotate or by the
reconciler, whichever comes first. Rejected then: the same needs-attention advice as a lost answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import Connection, Health, RotationAttempt, RotationState
from ..services.audit import Actor
from ..services.vault import active_credential
from .core import (
    RotationOutcome,
    claim_connection,
    journal_finish,
    outcome_from,
    release_claim,
    set_health,
    utc,
)
from .probe import lost_answer_advice, probe_old

RECHECK = "probed_alive_recheck"


def late_grace() -> timedelta:
    """How long a timed-out refresh may take to land: twice the longest a vendor may hold a request."""
    return timedelta(seconds=2 * (settings.OUTBOUND_CONNECT_TIMEOUT + settings.OUTBOUND_READ_TIMEOUT))


def pending_recheck(connection: Connection) -> RotationAttempt | None:
    return connection.rotations.filter(state=RotationState.FAILED, step=RECHECK).order_by("-started_at").first()


def wait_message(connection: Connection, attempt: RotationAttempt) -> str:
    at = (attempt.finished_at or attempt.started_at) + late_grace()
    return (f"Not refreshed: the refresh at {utc(attempt.started_at)} got no answer and may still land at "
            f"{connection.provider_obj.label}; another refresh now could use a secret that is about to be "
            f"rescinded. Switchboard probes the current secret again after {utc(at)}; try again then.")


def recheck(attempt: RotationAttempt, *, actor: Actor, task_id: str = "") -> RotationOutcome | None:
    """Probe the old secret again (the caller holds the claim). The needs-attention outcome when the
    vendor now rejects it; None when it is still accepted, replaced, or the probe could not tell."""
    connection = attempt.connection
    old = attempt.old_credential
    current = active_credential(connection)
    if old is None or current is None or current.pk != old.pk:
        RotationAttempt.objects.filter(pk=attempt.pk).update(step="probed_alive")
        return None
    probe = probe_old(connection=connection, credential=old, actor=actor, task_id=task_id)
    if probe.verdict == "alive":
        RotationAttempt.objects.filter(pk=attempt.pk).update(
            step="probed_alive", error=f"{attempt.error}\nProbed again at {utc(timezone.now())}: {probe.detail}.")
        return None
    if probe.verdict != "rejected":
        return None  # ask again next time
    message = lost_answer_advice(connection=connection, attempt=attempt, when=attempt.started_at, probe=probe)
    with transaction.atomic():
        journal_finish(attempt, state=RotationState.OUTCOME_UNKNOWN, actor=actor, step="probed_rejected",
                       error=f"The refresh landed after its timeout. {message} Probe: {probe.detail}.")
        set_health(connection.pk, Health.NEEDS_ATTENTION, message)
    return outcome_from(attempt, message)


def recheck_late(*, now: datetime, actor: Actor) -> list[dict]:
    """The reconciler's part: re-probe every timed-out refresh whose grace has passed."""
    report = []
    due = RotationAttempt.objects.filter(state=RotationState.FAILED, step=RECHECK,
                                         finished_at__lt=now - late_grace()).select_related("connection")
    for attempt in due:
        claim = claim_connection(attempt.connection_id, now=now)
        if claim is None:
            continue  # a rotation is running; it rechecks first
        try:
            attempt.refresh_from_db()
            if attempt.step == RECHECK:
                outcome = recheck(attempt, actor=actor)
                report.append({"late": outcome.as_dict() if outcome else {"attempt": str(attempt.id),
                                                                           "still_accepted": True}})
        finally:
            release_claim(attempt.connection_id, claim)
    return report
