"""Archive a connection: it leaves every list, schedule and batch and is never sent to again, while
its request log, rotation journal, alerts and audit trail stay, searchable under its name.

Nothing is deleted (RequestLog, RotationAttempt and AuditEvent refer to it with PROTECT). Its
active and staged secrets are retired and their ciphertext replaced by an empty object: an archive
holds no usable secret; the fingerprints stay for the record. The name stays taken: the history is
filed under it, so a new connection needs another name (docs/decisions.md, "Archived connections").
There is no un-archive: a connection to the same vendor is added afresh.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import AlertState, Connection, CredentialState, RotationAttempt, RotationState
from ..rotation.core import claim_connection
from .audit import Actor, audit

RETIRED_BY_ARCHIVE = "archived"  # Credential.meta["retired_because"]


def connection_archive(*, connection: Connection, actor: Actor) -> Connection:
    """Archive `connection`; raise ValidationError (nothing changed) while a rotation is running or
    unsettled, or when it is archived already."""
    if connection.archived_at is not None:
        raise ValidationError(f"{connection.name} was archived on {connection.archived_at:%Y-%m-%d %H:%M} UTC.")
    unsettled = RotationAttempt.objects.filter(connection=connection, state=RotationState.STARTED).exists()
    # The rotation claim keeps a rotation from starting meanwhile; it is never given back (archived).
    if unsettled or claim_connection(connection.pk) is None:
        raise ValidationError(f"A rotation of {connection.name} is running or not yet settled; archive it once "
                              "the rotation history shows it finished.")
    now = timezone.now()
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        retired = []
        for credential in locked.credentials.filter(state__in=[CredentialState.ACTIVE, CredentialState.STAGED]):
            credential.state = CredentialState.RETIRED
            credential.retired_at = now
            credential.secret = {}  # shredded: never sent again, nothing left to leak
            credential.meta = {**(credential.meta or {}), "retired_because": RETIRED_BY_ARCHIVE}
            credential.save(update_fields=["state", "retired_at", "secret", "meta"])
            retired.append({"version": credential.version, "fingerprint": credential.fingerprint})
        # Its alerts end: nothing about it will change again (the events stay in the history).
        AlertState.objects.filter(connection=locked, active=True).update(active=False, detail="archived")
        Connection.with_archived.filter(pk=locked.pk).update(
            archived_at=now, archived_by=actor.user, archived_by_label=actor.label[:150], enabled=False,
            next_refresh_at=None, rotation_lease_until=None, updated_at=now)
        audit(actor=actor, action="connection.archive", connection=locked,
              details={"provider": locked.provider, "base_url": locked.base_url, "retired": retired})
    name = locked.name

    def unschedule() -> None:
        from .. import scheduling

        scheduling.remove_connection_schedule(name)

    transaction.on_commit(unschedule)
    return Connection.with_archived.get(pk=connection.pk)
