"""Vendor sessions kept inside a credential (TeleTracker bearer sessions, shared/VENDORS.md).

A bearer-session credential logs in (POST /auth/login) before its first call; the session
(token, refresh token, expiry computed from tokenLifetime) is stored encrypted in the same
credential's secret under "session". The fingerprint is left alone: it identifies the
operator's secret, which a login does not change; the session's own fingerprint (the one the
rotation history shows), its expiry and how the credential rotates are kept in its meta. Refreshing a session rescinds the old refresh
token, so that is rotation's job (connections/rotation/), built on the provider's
refresh_request()/parse_refresh() hooks.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from ..crypto import Sealed, encrypt_json
from ..models import Credential
from ..providers.http import RefreshError


@sensitive_variables()
def session_login(*, connection, credential: Credential, actor, task_id: str = ""):
    """Log in and store the session. Returns (Result of the login, the new secret or None)."""
    from . import client

    provider = connection.provider_obj
    result = client.send(connection, provider.login_request(connection.effective_options()), actor=actor,
                         operation="login", credential=credential, task_id=task_id)
    if not result.ok:
        return result, None
    try:
        secret = provider.parse_login(client.reveal(credential), result.data, time.time())
    except RefreshError as exc:
        result.ok = False
        result.error_code = "bad_login_answer"
        result.error_message = str(exc)
        return result, None
    return result, session_store(credential=credential, session=secret["session"])


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
