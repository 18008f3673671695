"""The model-based rotation test (tests/rotation/test_rotation_model.py) for the oauth2 refresh-token grant,
against the real authorization server (tests/authserver: rotation, reuse protection, grace 0),
with a proxy in front of its token endpoint that loses answers (tests/oauth_faults.py).

Rules: rotate; rotate into a fault (answer dropped after the server rotated, garbled after it
rotated, a 500 or a reset before it saw the request); a call; a call in flight during the last
rotation; the connection test; kill the worker at each journal step (then the reconciler);
the reconciler; `connections recover`; re-authorize (a new grant pasted) when it needs attention.
Invariants after every step:
  (a) settled -> the server honours the stored refresh token, or the connection needs attention
      with an action;
  (b) no refresh token ever reaches the server twice (never a replay), and the stored grant's
      family is never revoked;
  (c) a call in flight never fails because a rotation succeeded.
ROTATION_MODEL_EXAMPLES / ROTATION_MODEL_STEPS as for the other vendors.
"""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from connections.models import Health, RotationAttempt, RotationState
from connections.outbound import client
from connections.outbound.client import RequestSpec, send
from connections.providers.oauth2_grants import expires_soon
from connections.rotation import reconcile_rotations, recover_spool, rotate, spool, staged_replace
from connections.rotation.core import lease_seconds
from connections.rotation.late import late_grace, pending_recheck
from connections.services.testing import connection_test
from connections.services.vault import active_credential
from tests import factories
from tests.authserver.client import new_grant
from tests.authserver.fixture import CLIENT_ID, CLIENT_SECRET, AuthServer
from tests.oauth_faults import AnswerLosingProxy
from tests.rotation.test_rotation_model import ACTOR, KILL_AT, MODEL_SETTINGS, Killed

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("empty_spool")]
FAULTS = ("drop", "garble", "fail500", "reset")
ME = RequestSpec("GET", "/api/me")


class OAuth2Model(RuleBasedStateMachine):
    authserver = None
    proxy = None

    def __init__(self):
        super().__init__()
        self.mark = len(self.authserver.token_log())
        secret = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "refresh_token": new_grant(self.authserver)["refresh_token"]}
        self.connection = factories.connection("oauth2", base_url=self.authserver.url, secret=secret, options={
            "token_url": self.proxy.url + "/o/token/", "test_path": "/api/me", "probe": "access_token"})
        self.in_flight_cred = None

    def reload(self):
        self.connection.refresh_from_db()
        return self.connection

    def stored_token(self) -> str:
        credential = active_credential(self.connection)
        return credential.reveal().get("refresh_token", "") if credential else ""

    def accepted(self) -> bool:
        token = self.stored_token()
        return any(r["token"] == token and r["revoked"] is None for r in self.authserver.refresh_tokens())

    @rule()
    def rotate_now(self):
        before = active_credential(self.connection)
        if rotate(connection=self.reload(), actor=ACTOR).state == RotationState.SUCCEEDED:
            self.in_flight_cred = before

    @rule(fault=st.sampled_from(FAULTS))
    def rotate_into_a_fault(self, fault):
        self.proxy.arm(fault)
        self.rotate_now()
        self.proxy.arm("")

    @rule()
    def call(self):
        send(self.reload(), ME, actor=ACTOR)

    @precondition(lambda self: self.in_flight_cred is not None)
    @rule()
    def call_in_flight_during_the_last_rotation(self):
        stale = iter([self.in_flight_cred])
        real = client._active_credential
        # A call whose access token must be renewed may be held back by a refresh's recheck window:
        # (c) is about the rotation that already succeeded, so only calls that need no renewal count.
        session = active_credential(self.connection).reveal().get("session")
        accepted = (self.accepted() and self.reload().health != Health.NEEDS_ATTENTION
                    and not expires_soon(session, time.time()))
        with mock.patch("connections.outbound.client._active_credential",
                        side_effect=lambda c: next(stale, None) or real(c)):
            result = send(self.reload(), ME, actor=ACTOR)
        if accepted:
            assert result.ok, f"a call in flight failed after a rotation: {result.status_code} {result.error_message}"

    @rule()
    def test_now(self):
        connection_test(connection=self.reload(), actor=ACTOR)

    @rule(step=st.sampled_from(KILL_AT))
    def kill_the_worker_at(self, step):
        def die(at):
            if at == step:
                raise Killed(at)

        with mock.patch("connections.rotation.refresh.checkpoint", side_effect=die):
            try:
                rotate(connection=self.reload(), actor=ACTOR)
            except Killed:
                pass
        reconcile_rotations(now=timezone.now() + timedelta(seconds=lease_seconds() + 5))

    @rule()
    def reconcile(self):
        later = max(timedelta(seconds=lease_seconds()), late_grace()) + timedelta(seconds=5)
        reconcile_rotations(now=timezone.now() + later)

    @rule()
    def recover(self):
        recover_spool(actor=ACTOR)

    @precondition(lambda self: self.connection.health == Health.NEEDS_ATTENTION)
    @rule()
    def reauthorize(self):
        token = new_grant(self.authserver)["refresh_token"]
        staged_replace(connection=self.reload(), secret={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                                         "refresh_token": token}, actor=ACTOR)

    @invariant()
    def settled_means_accepted_or_needs_attention(self):  # (a)
        connection = self.reload()
        if RotationAttempt.objects.filter(connection=connection, state=RotationState.STARTED).exists():
            return
        if pending_recheck(connection) is not None or spool.pending() or self.accepted():
            return
        assert connection.health == Health.NEEDS_ATTENTION, (
            f"the server refuses the stored refresh token but health is {connection.health}: {connection.health_reason}")
        assert "Action:" in connection.health_reason or "connections recover" in connection.health_reason, \
            connection.health_reason

    @invariant()
    def never_a_replay(self):  # (b)
        presented = [r["presented"] for r in self.authserver.token_log()[self.mark:]
                     if r["grant_type"] == "refresh_token"]
        assert len(presented) == len(set(presented)), "a refresh token reached the server twice"
        token = self.stored_token()
        assert not (token and self.authserver.family_revoked(token)), "the stored grant's family was revoked"


@pytest.fixture
def fast_timeouts(settings):
    settings.OUTBOUND_READ_TIMEOUT = 2.0
    settings.OUTBOUND_DEADLINE = 5.0
    with mock.patch("connections.outbound.client._sleep"), mock.patch("connections.rotation.reconcile.time"):
        yield


def test_rotation_model_oauth2(tmp_path, fast_timeouts):
    # Its own server with hour-long access tokens: expiry is not what this model explores, and a
    # token expiring mid-run would make the sequences depend on the clock.
    server = AuthServer(tmp_path / "authserver", env={"AUTHSERVER_ACCESS_TOKEN_SECONDS": "3600"}).start()
    try:
        with AnswerLosingProxy(server.url) as proxy:
            OAuth2Model.authserver, OAuth2Model.proxy = server, proxy
            run_state_machine_as_test(OAuth2Model, settings=MODEL_SETTINGS)
    finally:
        server.stop()
