"""The pieces both kinds of rotation share: the claim, the outcome, the probe, test checkpoints.

The claim is a compare-and-set UPDATE on the connection row that commits on its own
(autocommit): at most one rotation per connection at a time, across processes and
machines, with a lease that expires if the worker dies. Nothing holds a transaction open
while a vendor is called.
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import metrics
from ..models import Connection, Credential, Health, RotationAttempt, RotationState
from ..services.audit import Actor, audit
from ..services.testing import connection_test

# The lease must outlive the slowest refresh call (connect + read timeouts, a throttle wait)
# plus the commit; a dead worker's claim is taken over once it expires.
DEFAULT_LEASE_SECONDS = 180


def lease_seconds() -> int:
    return int(getattr(settings, "ROTATION_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


# ---------------------------------------------------------------------------- the outcome

BUSY = "busy"  # another rotation holds the claim: nothing was done
UNSUPPORTED = "unsupported"  # this connection's credential cannot rotate that way
SPOOLED = "spooled"  # the vendor's new token is in the recovery spool, not in the database

@dataclass
class RotationOutcome:
    """What a rotation did, for pages, the CLI (which maps it to an exit code) and tasks."""

    state: str
    message: str
    connection: str = ""
    attempt_id: str = ""
    kind: str = ""
    vendor_request_id: str = ""
    old_fingerprint: str = ""
    new_fingerprint: str = ""
    new_version: int | None = None
    verified: bool | None = None  # the provider's test with the new credential (None: not run)
    verification: str = ""
    error: dict = field(default_factory=dict)  # the vendor's parsed error {status, code, message}

    @property
    def ok(self) -> bool:
        return self.state in (RotationState.SUCCEEDED, RotationState.RECOVERED)

    @property
    def needs_attention(self) -> bool:
        """A credential's state is uncertain (an unknown outcome, a token in the spool): an operator
        must act, and the message says how. Refusals (failed, busy, unsupported) change nothing."""
        return not self.ok and self.state not in (RotationState.FAILED, BUSY, UNSUPPORTED)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "needs_attention": self.needs_attention}


# ---------------------------------------------------------------------------- the claim


def claim_connection(connection_id: int, *, now: datetime | None = None) -> uuid.UUID | None:
    """Take the connection's rotation claim (free, or its lease expired); None when held.

    One UPDATE ... WHERE, committed at once: two processes (or machines) racing here can
    never both win, whatever their isolation level, because the row lock serialises them
    and the loser re-evaluates the WHERE clause against the winner's committed row.
    """
    now = now or timezone.now()
    claim = uuid.uuid4()
    won = Connection.objects.filter(pk=connection_id).filter(
        Q(rotation_claim__isnull=True) | Q(rotation_lease_until__lt=now)
    ).update(rotation_claim=claim, rotation_lease_until=now + timedelta(seconds=lease_seconds()))
    return claim if won else None


def release_claim(connection_id: int, claim: uuid.UUID) -> bool:
    """Give the claim back, only if it is still ours (a reconciler may have taken it over)."""
    return bool(Connection.objects.filter(pk=connection_id, rotation_claim=claim).update(
        rotation_claim=None, rotation_lease_until=None))


def release_stale_claims(*, now: datetime | None = None) -> int:
    """Clear claims whose lease expired (their worker died) and that guard no unsettled attempt."""
    now = now or timezone.now()
    unsettled = RotationAttempt.objects.unsettled().values("connection_id")
    return Connection.objects.filter(rotation_claim__isnull=False, rotation_lease_until__lt=now).exclude(
        pk__in=unsettled).update(rotation_claim=None, rotation_lease_until=None)


def claim_holder(connection: Connection) -> RotationAttempt | None:
    """The attempt that is running for this connection, if any (for the "busy" message)."""
    return connection.rotations.unsettled().newest_first().first()


def busy_outcome(connection: Connection, kind: str) -> RotationOutcome:
    running = claim_holder(connection)
    who = (f" (started by {running.actor_label or 'someone'} at {utc(running.started_at)})" if running else "")
    return RotationOutcome(
        state=BUSY, kind=kind, connection=connection.name,
        message=f"Another rotation of {connection.name} is in progress{who}. Nothing was changed; "
                "wait for it to finish and look at the rotation history.")


# ---------------------------------------------------------------------------- checkpoints (tests only)

CRASH_ENV = "SWITCHBOARD_ROTATION_CRASH_AT"


def checkpoint(step: str) -> None:
    """Tests kill the worker here with SIGKILL (env SWITCHBOARD_ROTATION_CRASH_AT=<step>).

    Honoured only under the test settings, so a stray variable in production does nothing.
    """
    wanted = os.environ.get(CRASH_ENV)
    if wanted and wanted == step and str(getattr(settings, "SETTINGS_MODULE", "")).endswith("test_settings"):
        os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------------------- journal helpers


def utc(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def host_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def actor_from(attempt: RotationAttempt) -> Actor:
    return Actor(user=attempt.actor, label=attempt.actor_label or "system", via=attempt.triggered_by)


def journal_start(*, connection: Connection, actor: Actor, kind: str, old: Credential | None,
                  new: Credential | None = None, attempt_id: uuid.UUID | str | None = None,
                  old_fingerprint: str | None = None) -> RotationAttempt:
    """Write the journal row (and its audit event). The caller commits it before calling the vendor."""
    kwargs = {"id": uuid.UUID(str(attempt_id))} if attempt_id else {}
    attempt = RotationAttempt.objects.create(
        connection=connection, kind=kind, actor=actor.user, actor_label=actor.label, triggered_by=actor.via,
        lease_until=timezone.now() + timedelta(seconds=lease_seconds()), state=RotationState.STARTED,
        step="journaled", old_credential=old,
        old_fingerprint=old_fingerprint if old_fingerprint is not None else (old.fingerprint if old else ""),
        new_credential=new, new_fingerprint=new.fingerprint if new else "", **kwargs)
    audit(actor=actor, action="rotation.start", connection=connection,
          details={"attempt": str(attempt.id), "kind": kind, "old_fingerprint": attempt.old_fingerprint,
                   "old_version": old.version if old else None, "host": host_label()})
    return attempt


def journal_finish(attempt: RotationAttempt, *, state: str, actor: Actor | None = None, step: str = "",
                   error: str = "", **fields) -> RotationAttempt:
    """Settle an attempt (inside the caller's transaction when there is one) and audit it."""
    attempt.state = state
    attempt.finished_at = timezone.now()
    attempt.lease_until = None
    attempt.step = step or state
    if error:
        attempt.error = error[:5000]
    for name, value in fields.items():
        setattr(attempt, name, value)
    attempt.save()
    metrics.rotation_settled(attempt)
    audit(actor=actor or actor_from(attempt), action=f"rotation.{state}", connection=attempt.connection,
          details={"attempt": str(attempt.id), "kind": attempt.kind, "old_fingerprint": attempt.old_fingerprint,
                   "new_fingerprint": attempt.new_fingerprint, "vendor_request_id": attempt.vendor_request_id,
                   "error": attempt.error[:500]})
    return attempt


def set_health(connection_id: int, health: str, reason: str) -> None:
    Connection.objects.filter(pk=connection_id).update(health=health, health_reason=reason[:500],
                                                       health_changed_at=timezone.now())


def clear_rotation_attention(connection_id: int, reason: str) -> None:
    """A working credential is in place again: lift a needs_attention set by a rotation."""
    Connection.objects.filter(pk=connection_id, health=Health.NEEDS_ATTENTION).update(
        health=Health.UNKNOWN, health_reason=reason[:500], health_changed_at=timezone.now())


def outcome_from(attempt: RotationAttempt, message: str, **extra) -> RotationOutcome:
    new_version = attempt.new_credential.version if attempt.new_credential_id and attempt.new_credential else None
    return RotationOutcome(
        state=attempt.state, message=message, connection=attempt.connection.name, attempt_id=str(attempt.id),
        kind=attempt.kind, vendor_request_id=attempt.vendor_request_id, old_fingerprint=attempt.old_fingerprint,
        new_fingerprint=attempt.new_fingerprint, new_version=new_version, **extra)


def in_autocommit() -> bool:
    return not transaction.get_connection().in_atomic_block


def close_db_connection() -> None:
    """Hand the database connection back before a slow vendor call (nothing is held across it).

    Inside a transaction (tests without transaction=True) the connection stays: closing it
    would throw the test's transaction away.
    """
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        conn.close()


def run_connection_test(*, connection: Connection, actor: Actor, task_id: str = ""):
    """The provider's connection test with the active credential; it also records the result on
    the connection (services.testing)."""
    return connection_test(connection=connection, actor=actor, task_id=task_id)
