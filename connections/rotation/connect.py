"""Connect's second half: the authorization code exchanged for a grant, as a rotation.

    connect_finish(session, params, actor) -> RotationOutcome
        The callback, checked by services/oauth2_connect.py (`connect_callback`). The code is
        exchanged once (no retry) under the connection's rotation claim, journaled (kind
        "connect"), and the grant goes through the same spool-then-commit path as a refresh
        (refresh.py): a new credential version, verified with the connection test. Raises
        ConnectError with the operator's sentence.
"""

from __future__ import annotations

import time

from django.db import DatabaseError, transaction

from ..models import Connection, Credential, CredentialState, RotationState
from ..outbound.client import send
from ..providers.http import RefreshError
from ..services.audit import Actor, audit
from ..services.oauth2_connect import ConnectError, connect_callback
from ..services.vault import active_credential
from .core import busy_outcome, claim_connection, journal_finish, journal_start, release_claim
from .probe import describe_result
from .refresh import _store_new_secret


def connect_finish(*, session, params, actor: Actor):
    connection, code, verifier, redirect_uri = connect_callback(session=session, params=params, actor=actor)
    return _exchange(connection, code, verifier, redirect_uri, actor)


def _exchange(connection: Connection, code: str, verifier: str, redirect_uri: str, actor: Actor):
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
