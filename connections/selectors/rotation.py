"""What the Rotate panel and the rotation history show (templates/connections/rotation.html), and
whether a connection's Rotate acts at the vendor (read from non-secret metadata: never decrypted)."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Connection, Credential, RotationAttempt, RotationState

HISTORY_ROWS = 10


def rotation_mode(credential: Credential | None) -> str:
    """"refresh", "login" (start a session) or "replace", from the credential's non-secret meta
    (providers' credential_meta(); kept current by vault, sessions and refresh): no decrypting."""
    if credential is None:
        return "replace"
    return (credential.meta or {}).get("rotation") or "replace"


def supports_refresh(connection: Connection, credential: Credential | None = None) -> bool:
    """Does `rotate` act at the vendor (a refresh, or a login that starts a session) rather than
    take a pasted secret? Reads metadata only, so pages may ask."""
    if not connection.provider_obj.rescinds_on_refresh:
        return False
    return rotation_mode(credential or connection.credentials.active().first()) in ("refresh", "login")


def refresh_warning(connection: Connection) -> str:
    """What a refresh does, in the provider's words, for the confirmation before it runs."""
    provider = connection.provider_obj
    if rotation_mode(connection.credentials.active().first()) == "login":
        how = provider.login_words.replace("logged in", "logs in").replace("asked", "asks")
        return (f"No {provider.label} session yet: this starts one ({how}) and stores it; Switchboard refreshes "
                "it before it expires.")
    return provider.refresh_warning or (f"{provider.label} invalidates the current secret the moment it answers; "
                    "Switchboard stores the new one at once.")



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
