""""Connect": the OAuth 2.0 authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636), from the
connection page to the vendor's consent page and back, ending in a stored grant.

    connect_start(connection, session, redirect_uri, actor) -> the consent page's URL
        A fresh state and PKCE verifier, kept server-side in the user's session (the verifier
        encrypted), never in the URL beyond `state` and the S256 challenge. Audited.
    connect_finish(session, params, actor) -> RotationOutcome
        The callback: the state must be one this session started, at most PENDING_SECONDS ago,
        for this user; it is used once. The code is exchanged once (no retry) under the
        connection's rotation claim, journaled (kind "connect"), and the grant goes through the
        same spool-then-commit path as a refresh (rotation/refresh.py): a new credential version,
        verified with the connection test. Raises ConnectError with the operator's sentence.
"""

from __future__ import annotations

import secrets
import time

from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction

from ..crypto import decrypt_bytes, encrypt_bytes
from ..models import Connection, Credential, CredentialState
from ..providers.http import RefreshError
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


def connect_finish(*, session, params, actor: Actor):
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
    return _exchange(connection, code, decrypt_bytes(entry["verifier"]).decode(), entry["redirect_uri"], actor)


def _exchange(connection: Connection, code: str, verifier: str, redirect_uri: str, actor: Actor):
    from ..models import RotationState
    from ..outbound.client import send
    from ..rotation.core import busy_outcome, claim_connection, journal_finish, journal_start, release_claim
    from ..rotation.probe import describe_result
    from ..rotation.refresh import _store_new_secret

    provider = connection.provider_obj
    claim = claim_connection(connection.pk)
    if claim is None:
        raise ConnectError(busy_outcome(connection, "connect").message, connection)
    try:
        old = active_credential(connection)
        if old is None:
            raise ConnectError("The connection has no client id and secret any more. Nothing was stored.", connection)
        secret = old.reveal()
        with transaction.atomic():
            attempt = journal_start(connection=connection, actor=actor, kind="connect", old=old)
        # The code and verifier ride in a credential that is never saved, so the log masks them too.
        carrier = Credential(connection=connection, version=old.version, fingerprint=old.fingerprint, meta=old.meta,
                             secret={**secret, "code": code, "code_verifier": verifier})
        spec = provider.code_request(connection.effective_options(), code=code, verifier=verifier,
                                     redirect_uri=redirect_uri)
        result = send(connection, spec, actor=actor, operation="connect", credential=carrier, retry=False)
        attempt.vendor_request_id = (result.vendor_request_id or "")[:200]
        try:
            if not result.ok:
                raise RefreshError(describe_result(result))
            new_secret = provider.parse_refresh({**secret, "refresh_token": ""}, result.data, now=time.time())
        except RefreshError as exc:
            message = (f"The authorization server did not issue a grant: {exc}. Nothing changed: "
                       f"v{old.version} stays active. Press Connect again.")
            with transaction.atomic():
                journal_finish(attempt, state=RotationState.FAILED, actor=actor, step="code_refused", error=message)
            raise ConnectError(message, connection) from None
        if not new_secret.get("refresh_token"):
            new_secret.pop("refresh_token")
        outcome = _store_new_secret(connection, attempt, old, new_secret, actor, "")
        if not secret.get("refresh_token"):
            # Nothing of it was consumed (client credentials): retired, not rescinded.
            Credential.objects.filter(pk=old.pk, state=CredentialState.RESCINDED).update(
                state=CredentialState.RETIRED)
        audit(actor=actor, action="oauth2.connect", connection=connection,
              details={"attempt": outcome.attempt_id, "new_fingerprint": outcome.new_fingerprint,
                       "vendor_request_id": outcome.vendor_request_id})
        outcome.message = ("Connected: the authorization server granted access and the grant is stored as "
                           f"credential v{outcome.new_version} (fingerprint {outcome.new_fingerprint}). "
                           + outcome.verification)
        return outcome
    finally:
        try:
            release_claim(connection.pk, claim)
        except DatabaseError:
            pass
