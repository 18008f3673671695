"""What the Rotate panel and the rotation history show (templates/connections/rotation.html)."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Connection, RotationAttempt, RotationState

HISTORY_ROWS = 10


@dataclass
class RotationPanel:
    refreshes: bool  # Rotate acts at the vendor (a refresh, or a login that starts a session)
    starts_session: bool  # ... and that is a login: no session yet
    rescinds: bool  # the vendor kills the old secret the moment it answers
    warning: str  # what a refresh does, in the provider's words (shown before it runs)
    history: list[RotationAttempt]  # newest first, HISTORY_ROWS at most
    running: RotationAttempt | None


def rotation_panel(*, connection: Connection) -> RotationPanel:
    """Three queries. Reads the credential's non-secret meta: nothing is decrypted to draw the page."""
    from ..rotation import refresh_warning, rotation_mode, supports_refresh

    credential = connection.credentials.active().defer("secret").first()
    refreshes = supports_refresh(connection, credential)
    rescinds = connection.provider_obj.rescinds_on_refresh
    history = list(connection.rotations.select_related("old_credential", "new_credential")
                   .newest_first()[:HISTORY_ROWS])
    return RotationPanel(
        refreshes=refreshes,
        starts_session=refreshes and rotation_mode(credential) == "login",
        rescinds=rescinds,
        warning=refresh_warning(connection) if rescinds else "",
        history=history,
        running=next((a for a in history if a.state == RotationState.STARTED), None),
    )


def rotation_attempt(*, attempt_id, connection: Connection | None = None) -> RotationAttempt | None:
    """One journal row (of this connection, when given), or None."""
    qs = RotationAttempt.objects.filter(pk=attempt_id)
    if connection is not None:
        qs = qs.filter(connection=connection)
    return qs.first()
