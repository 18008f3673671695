"""Refreshes started from outside the schedule, for rotating refresh tokens (grants.py):

- renew_for_call(): a call that finds its access token expired renews it through rotate() (the
  same claim as the scheduler and `connections rotate`), or waits for the rotation in progress.
- staged_by_refresh(): a pasted refresh token can only be checked by using it: it is made
  active, refreshed under the claim (the new one is committed or spooled), and put back to the
  previous credential if the server refused it.
"""

from __future__ import annotations

import threading
import time

from django.db import transaction

from ..models import Connection, Credential, CredentialState, RotationState
from ..services.audit import Actor, audit
from ..services.vault import active_credential, credential_activate, credential_add
from .core import BUSY, RotationOutcome, set_health
from .grants import REPLAY_REFUSED
from .refresh import _rotate_claimed, rotate

_local = threading.local()


# ---------------------------------------------------------------------------- on demand

WAIT_FOR_OTHER = 30.0  # seconds a call waits for another process's refresh of the same grant


def renew_for_call(*, connection: Connection, actor: Actor, task_id: str = "",
                   wait: float = WAIT_FOR_OTHER) -> tuple[Credential | None, str]:
    """Renew the access token of the connection's active credential for a call; (credential, "")
    or (None, why not). Registered with outbound.sessions at start-up (apps.py)."""
    if getattr(_local, "renewing", False):
        return None, "its access token expired again during its own refresh; not refreshed twice"
    _local.renewing = True
    try:
        outcome = rotate(connection=connection, actor=actor, task_id=task_id)
    finally:
        _local.renewing = False
    if outcome.state == BUSY and not Connection.objects.filter(pk=connection.pk, rotation_claim__isnull=False).exists():
        return None, outcome.message  # not another refresh: a wait (e.g. a timed-out refresh may still land)
    if outcome.state == BUSY:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and Connection.objects.filter(
                pk=connection.pk, rotation_claim__isnull=False).exists():
            time.sleep(0.2)
        latest = connection.rotations.order_by("-started_at").first()
        if latest is not None and latest.state not in (RotationState.SUCCEEDED, RotationState.RECOVERED):
            return None, f"the refresh in progress did not succeed: {latest.error[:300] or latest.state}"
    elif not outcome.ok:
        return None, outcome.message
    credential = active_credential(connection)
    if credential is None:
        return None, "no active credential after the refresh"
    return credential, ""


# ---------------------------------------------------------------------------- a pasted refresh token


def staged_by_refresh(*, connection: Connection, secret: dict, actor: Actor, task_id: str = "") -> RotationOutcome:
    """Paste of a refresh token (the caller holds the claim): use it once, keep what it yields."""
    with transaction.atomic():
        row = Connection.objects.select_for_update().get(pk=connection.pk)
        health, reason = row.health, row.health_reason
        previous = active_credential(connection)
        pasted = credential_add(connection=connection, secret=secret, actor=actor, source="operator")
        credential_activate(credential=pasted)
        audit(actor=actor, action="secret.replace", connection=connection,
              details={"version": pasted.version, "fingerprint": pasted.fingerprint, "verify": "by refresh",
                       "previous_version": previous.version if previous else None})
    outcome = _rotate_claimed(connection=connection, actor=actor, task_id=task_id, attempt_id=None)
    if outcome.ok:
        outcome.message = f"The pasted refresh token (v{pasted.version}) worked. " + outcome.message
        return outcome
    if outcome.state not in (RotationState.FAILED, REPLAY_REFUSED):
        return outcome  # unknown: the pasted token stays active, the journal says what to do
    # Refused or not sent: nothing rotated. Put the previous credential back.
    with transaction.atomic():
        Connection.objects.select_for_update().get(pk=connection.pk)
        if previous is not None:
            credential_activate(credential=previous)
        Credential.objects.filter(pk=pasted.pk).update(state=CredentialState.REJECTED)
        set_health(connection.pk, health, reason)
    back = f"v{previous.version} is active again" if previous else "no credential is active"
    outcome.message = (f"The pasted refresh token (v{pasted.version}) was not accepted: {outcome.message} "
                       f"Nothing changed: {back}.")
    return outcome
