"""Template helpers of the Rotate panel and rotation history (templates/connections/rotation.html)."""

from django import template

register = template.Library()

HISTORY_ROWS = 10


@register.simple_tag
def rotation_context(connection, outcome=None, attempt_id: str = "", form=None) -> dict:
    """What the panel shows: how this connection rotates, the warning, a running attempt, the history."""
    from connections.forms import SecretForm
    from connections.models import RotationState
    from connections.rotation import refresh_warning, rotation_mode, supports_refresh
    from connections.services.vault import active_credential

    # From the credential's non-secret meta: nothing is decrypted to draw the page.
    credential = active_credential(connection)
    refreshes = supports_refresh(connection, credential)
    history = list(connection.rotations.select_related("old_credential", "new_credential")
                   .order_by("-started_at")[:HISTORY_ROWS])
    running = next((a for a in history if a.state == RotationState.STARTED), None)
    return {
        "refreshes": refreshes,
        "starts_session": refreshes and rotation_mode(credential) == "login",
        "rescinds": connection.provider_obj.rescinds_on_refresh,
        "warning": refresh_warning(connection) if connection.provider_obj.rescinds_on_refresh else "",
        "history": history,
        "running": running,
        "form": form or SecretForm(provider=connection.provider),
        "outcome": outcome,
        "attempt_id": attempt_id or (str(running.id) if running else ""),
    }
