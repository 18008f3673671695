"""The storage of vendor sessions kept inside a credential (TeleTracker bearer sessions,
shared/VENDORS.md). The login itself is the client's (client.session_login); this module only
stores and forgets sessions, below the client.

A bearer-session credential logs in (POST /auth/login) before its first call; the session
(token, refresh token, expiry computed from tokenLifetime) is stored encrypted in the same
credential's secret under "session". The fingerprint is left alone: it identifies the
operator's secret, which a login does not change; the session's own fingerprint (the one the
rotation history shows), its expiry and how the credential rotates are kept in its meta. Refreshing a session rescinds the old refresh
token, so that is rotation's job (connections/rotation/), built on the provider's
refresh_request()/parse_refresh() hooks.
"""

from __future__ import annotations

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from ..crypto import Sealed, encrypt_json
from ..models import Credential


@sensitive_variables()
def session_store(*, credential: Credential, session: dict) -> dict:
    """Merge a session into the credential's stored secret (row-locked; never an older copy)."""
    with transaction.atomic():
        row = Credential.objects.select_for_update().get(pk=credential.pk)
        secret = {**row.secret.reveal(), "session": session}
        sealed = Sealed(encrypt_json(secret))
        meta = {**(row.meta or {}), **row.connection.provider_obj.credential_meta(secret)}
        Credential.objects.filter(pk=row.pk).update(secret=sealed, meta=meta)
    credential.secret, credential.meta = sealed, meta
    return secret


# A session renewed by a rotating refresh (oauth2's refresh-token grant) goes through rotation's
# claim, journal and spool; rotation registers that function at start-up (apps.py), so this lower
# layer never imports rotation.
_renewer = None


def register_renewer(renewer) -> None:
    global _renewer
    _renewer = renewer


def session_renew(*, connection, actor, task_id: str = "") -> tuple[Credential | None, str]:
    """Renew the active credential's session by a refresh; (the active credential, "") or (None, why)."""
    if _renewer is None:
        return None, "no refresh is available in this process"
    return _renewer(connection=connection, actor=actor, task_id=task_id)


def session_forget(*, credential: Credential) -> None:
    """Drop a stored session the vendor rejected, so the next call logs in again."""
    with transaction.atomic():
        row = Credential.objects.select_for_update().filter(pk=credential.pk).first()
        if row is None:
            return
        secret = row.secret.reveal()
        if "session" not in secret:
            return
        secret.pop("session")
        sealed = Sealed(encrypt_json(secret))
        meta = {**{k: v for k, v in (row.meta or {}).items() if not k.startswith("session_")},
                **row.connection.provider_obj.credential_meta(secret)}
        Credential.objects.filter(pk=row.pk).update(secret=sealed, meta=meta)
    credential.secret, credential.meta = sealed, meta
