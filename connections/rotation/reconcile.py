"""Settling what a dead worker left behind, and deciding when a proactive refresh is due.

`reconcile_rotations()` runs on a short beat interval (connections/scheduling.py): it imports
this machine's recovery spool, settles journal rows left `started` whose lease expired (by
the same probe a live rotation uses for an unknown outcome), and clears stale claims, so
nothing stays claimed forever.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Connection, Credential, CredentialState, Health, RotationAttempt, RotationState
from ..services.audit import Actor
from . import spool
from .core import (
    RotationOutcome,
    claim_connection,
    journal_finish,
    outcome_from,
    release_claim,
    release_stale_claims,
    set_health,
    utc,
)
from .late import RECHECK, late_grace, recheck_late
from .probe import lost_answer_advice, probe_hint_text, probe_old
from .sessions import recover_by_login

log = logging.getLogger(__name__)

RECONCILER = Actor(label="reconciler", via="schedule")
PROBE_TRIES = 3


# ---------------------------------------------------------------------------- settling


def settle_by_probe(attempt: RotationAttempt, *, connection: Connection, old: Credential | None, actor: Actor,
                    task_id: str = "", when: datetime | None = None, what: str = "",
                    probe=None, late: bool = False) -> RotationOutcome:
    """Decide an attempt whose refresh may or may not have happened, by asking the OLD secret.

    Never repeats the refresh. The probe itself is safe to repeat (it rotates nothing), so a
    flaky answer is asked again a couple of times before giving up.
    """
    when = when or attempt.started_at
    provider = connection.provider_obj
    if old is None:
        message = f"{what}; no old credential was recorded, so nothing can be probed."
        with transaction.atomic():
            journal_finish(attempt, state=RotationState.OUTCOME_UNKNOWN, actor=actor, error=message)
        set_health(connection.pk, Health.NEEDS_ATTENTION, message)
        return outcome_from(attempt, message)
    if provider.recovers_by_login(old.reveal()):
        # The probe would ask the old access token, which says nothing about the consumed refresh
        # token: import a spooled session if this machine has one, else log in again.
        spooled = _import_spooled(attempt, actor)
        if spooled:
            return outcome_from(attempt, f"{what}; the new session was in the recovery spool: {spooled}")
        return recover_by_login(attempt, connection=connection, old=old, actor=actor, task_id=task_id, when=when,
                                what=what)
    for n in range(PROBE_TRIES):
        if probe is None or probe.verdict == "inconclusive":
            if n:
                time.sleep(n)
            probe = probe_old(connection=connection, credential=old, actor=actor, task_id=task_id)
        if probe.verdict != "inconclusive":
            break

    if probe.verdict == "alive":
        message = (f"{provider.label} did not rotate: {what}, and the current secret is still accepted "
                   f"({probe.detail}). Nothing changed; the current secret stays active. Try again later.")
        if late:
            message += (f" The refresh may still land at {provider.label}: Switchboard probes again in "
                        f"{int(late_grace().total_seconds())} s and refreshes nothing until then.")
        with transaction.atomic():
            journal_finish(attempt, state=RotationState.FAILED, actor=actor,
                           step=RECHECK if late else "probed_alive", error=message)
        return outcome_from(attempt, message)

    # The secret may be gone. A token the vendor issued may still be on this machine's disk.
    spooled = _import_spooled(attempt, actor)
    if spooled:
        return outcome_from(attempt, f"{what}; the new secret was in the recovery spool: {spooled}")

    if probe.verdict == "rejected":
        message = lost_answer_advice(connection=connection, attempt=attempt, when=when, probe=probe)
        with transaction.atomic():
            journal_finish(attempt, state=RotationState.OUTCOME_UNKNOWN, actor=actor, step="probed_rejected",
                           error=f"{what}. {message} Probe: {probe.detail}. If a worker may have spooled the "
                                 "new secret, run `connections recover` on each worker machine first.")
            set_health(connection.pk, Health.NEEDS_ATTENTION, message)
        return outcome_from(attempt, message)

    # unavailable or still inconclusive: we cannot tell, and must not guess.
    req = f" (request id {attempt.vendor_request_id})" if attempt.vendor_request_id else ""
    message = (f"The {provider.label} refresh at {utc(when)}{req} got no answer and Switchboard cannot tell "
               f"whether it rotated the secret{probe_hint_text(connection)}. Action: test with a call that checks the "
               f"secret; if it is rejected, ask {provider.label} support for a new one quoting that time, "
               "then paste it. Do not refresh again until then.")
    if provider.reauthorize_advice:
        message = (f"The {provider.label} refresh at {utc(when)}{req} got no answer and Switchboard cannot tell "
                   f"whether it rotated the secret{probe_hint_text(connection)}. Action: "
                   + provider.reauthorize_advice.format(name=connection.name) + ". Do not refresh again.")
    with transaction.atomic():
        journal_finish(attempt, state=RotationState.OUTCOME_UNKNOWN, actor=actor, step=f"probe_{probe.verdict}",
                       error=f"{message} ({what}; probe: {probe.detail})")
        set_health(connection.pk, Health.NEEDS_ATTENTION, message)
    return outcome_from(attempt, message)


def _import_spooled(attempt: RotationAttempt, actor: Actor) -> str:
    """Import this machine's spool if it holds the attempt's new secret; the import's message, or ""."""
    if spool.spooled_for(attempt.id) is None:
        return ""
    mine = [r for r in spool.recover_spool(actor=actor) if r.attempt_id == str(attempt.id)]
    attempt.refresh_from_db()
    if mine and mine[0].status in ("imported", "already_stored", "conflict"):
        return mine[0].message
    return ""


def settle_attempt(attempt: RotationAttempt, *, actor: Actor = RECONCILER, task_id: str = "") -> RotationOutcome:
    """Settle an attempt left `started` by a worker that stopped. The caller holds the claim."""
    connection = attempt.connection
    spooled = _import_spooled(attempt, actor)
    if spooled:
        return outcome_from(attempt, "A stopped worker's new secret was in the recovery spool: " + spooled)
    if attempt.kind == "staged":
        # A staged replacement only tests the new secret; nothing changed at the vendor.
        message = ("The worker stopped before the new secret was verified; it was not promoted. "
                   "The current secret is unchanged and still active. Paste the new secret again.")
        with transaction.atomic():
            if attempt.new_credential_id:
                Credential.objects.filter(pk=attempt.new_credential_id, state=CredentialState.STAGED).update(
                    state=CredentialState.RETIRED, retired_at=timezone.now())
            journal_finish(attempt, state=RotationState.FAILED, actor=actor, error=message)
        return outcome_from(attempt, message)
    return settle_by_probe(attempt, connection=connection, old=attempt.old_credential, actor=actor,
                           task_id=task_id, when=attempt.started_at,
                           what=f"the worker running it stopped at step {attempt.step or 'unknown'!r}")


def reconcile_rotations(*, now: datetime | None = None, actor: Actor = RECONCILER) -> list[dict]:
    """Import this machine's spool, settle stale `started` attempts, clear stale claims."""
    now = now or timezone.now()
    report: list[dict] = [{"spool": r.as_dict()} for r in spool.recover_spool(actor=actor)]
    stale = RotationAttempt.objects.unsettled().filter(
        Q(lease_until__lt=now) | Q(lease_until__isnull=True)).select_related("connection", "old_credential")
    for attempt in stale:
        claim = claim_connection(attempt.connection_id, now=now)
        if claim is None:
            continue  # a live rotation (or another reconciler) holds it and settles it itself
        try:
            attempt.refresh_from_db()
            if attempt.state != RotationState.STARTED:
                continue
            outcome = settle_attempt(attempt, actor=actor)
            report.append({"attempt": outcome.as_dict()})
        except Exception:
            log.exception("settling rotation %s failed; the next run tries again", attempt.pk)
        finally:
            release_claim(attempt.connection_id, claim)
    report.extend(recheck_late(now=now, actor=actor))
    released = release_stale_claims(now=now)
    if released:
        report.append({"released_claims": released})
    return report
