""""Connect": the OAuth 2.0 authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636), from the
connection page to the vendor's consent page and back, ending in a stored grant.

    connect_start(connection, session, redirect_uri, actor) -> the consent page's URL
        A fresh state and PKCE verifier, kept server-side in the user's session (the verifier
        encrypted), never in the URL beyond `state` and the S256 challenge. Audited.
    connect_callback(session, params, actor) -> (connection, code, verifier, redirect_uri)
        The callback: the state must be one this session started, at most PENDING_SECONDS ago,
        for this user; it is used once. Raises ConnectError with the operator's sentence.

The exchange of the code is a rotation (rotation/connect.py, `connect_finish`).
"""

from __future__ import annotations

import secrets
import time

from django.core.exceptions import ValidationError

from ..crypto import decrypt_bytes, encrypt_bytes
from ..models import Connection
from ..providers.oauth2_grants import authorization_url, explain_grant_error, pkce_pair
from .audit import Actor, audit
from .vault import active_credential

SESSION_KEY = "oauth2_connect"
PENDING_SECONDS = 600
MAX_PENDING = 5


class ConnectError(Exception):
    def __init__(self, message: str, connection: Connection | None = None):
        super().__init__(message)
        self.message, self.connection = message, connection


def connect_start(*, connection: Connection, session, redirect_uri: str, actor: Actor) -> str:
    provider = connection.provider_obj
    options = connection.effective_options()
    if not provider.supports_connect(options):
        raise ValidationError({"authorize_url": "set the authorization URL (option authorize_url) to use Connect"})
    credential = active_credential(connection)
    if credential is None:
        raise ValidationError({"secret": "store the client id and client secret first, then press Connect"})
    client_id = credential.reveal()["client_id"]
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    now = time.time()
    pending = {k: v for k, v in (session.get(SESSION_KEY) or {}).items() if now - v.get("at", 0) < PENDING_SECONDS}
    for old in sorted(pending, key=lambda k: pending[k]["at"])[:max(0, len(pending) - MAX_PENDING + 1)]:
        pending.pop(old)
    pending[state] = {"connection": connection.pk, "user": actor.user.pk if actor.user else None, "at": now,
                      "redirect_uri": redirect_uri, "verifier": encrypt_bytes(verifier.encode())}
    session[SESSION_KEY] = pending
    audit(actor=actor, action="oauth2.connect_start", connection=connection,
          details={"authorize_url": options["authorize_url"], "scope": options.get("scope", ""),
                   "redirect_uri": redirect_uri})
    return authorization_url(options["authorize_url"], client_id=client_id, redirect_uri=redirect_uri, state=state,
                             challenge=challenge, scope=options.get("scope", ""))


def connect_callback(*, session, params, actor: Actor) -> tuple[Connection, str, str, str]:
    """Check the authorization server's answer against the Connect this session started; used once.
    (connection, code, verifier, redirect_uri) for the exchange (rotation/connect.py); ConnectError
    with the operator's sentence otherwise."""
    pending = session.get(SESSION_KEY) or {}
    state = params.get("state") or ""
    entry = pending.pop(state, None) if state else None
    session[SESSION_KEY] = pending  # one use, whatever happens next
    if entry is None or time.time() - entry["at"] >= PENDING_SECONDS or entry["user"] != (
            actor.user.pk if actor.user else None):
        raise ConnectError("This authorization answer does not match a Connect you started in this browser in the "
                           f"last {PENDING_SECONDS // 60} minutes (or it was already used). Nothing changed; press "
                           "Connect again.")
    connection = Connection.objects.filter(pk=entry["connection"]).first()
    if connection is None:
        raise ConnectError("The connection was deleted meanwhile. Nothing was stored.")
    if params.get("error"):
        said = explain_grant_error(params["error"][:100], (params.get("error_description") or "")[:300])
        audit(actor=actor, action="oauth2.connect_refused", connection=connection, details={"error": said})
        raise ConnectError(f"The authorization server did not grant access ({said}). Nothing changed.", connection)
    code = params.get("code") or ""
    if not code or len(code) > 4096:
        raise ConnectError("The authorization server's answer carried no code. Nothing changed; press Connect again.",
                           connection)
    return connection, code, decrypt_bytes(entry["verifier"]).decode(), entry["redirect_uri"]
