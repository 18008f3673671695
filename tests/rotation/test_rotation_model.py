"""Model-based test of rescind-on-refresh rotation (issue 13), on PostgreSQL, over real HTTP to the sandbox.

Hypothesis drives a connection through random sequences of: rotate, a call, a call that was in
flight during the last rotation, the connection test, an injected fault (answer dropped after the
vendor acted, a garbled 200 after it acted, a garbled 200 instead of acting, 5xx, 429, a reset
before the vendor acted, a read timeout while the vendor goes on and acts later), on any request
or on the refresh itself, a worker killed at each journal step (then the
reconciler settles it), the reconciler, `connections recover`, and an operator pasting the secret
support issued. After every step it checks:

  (a) once settled (no attempt left `started`, no timed-out refresh waiting for its recheck), either the vendor accepts the stored credential,
      or the connection needs attention with an action for the operator; never health OK (or
      unknown) while the vendor refuses it;
  (b) the vendor never received a refresh with a secret it had already rescinded (the sandbox
      records whether each refresh's secret was current);
  (c) a call in flight never fails because a rotation succeeded (it read the old secret; the
      client retries it once with the new one).

Each vendor whose refresh rescinds has a machine: Cleanlist, and TeleTracker bearer sessions.

How many examples: ROTATION_MODEL_EXAMPLES (default 20) sequences of up to ROTATION_MODEL_STEPS
(default 15) steps per vendor. With 11 rules, 7 faults and 4 kill points, 300 steps send the
refresh straight into each fault about four times (and each fault onto some other request as
often) and kill the worker at each point about seven times per run, enough to catch a regression in any one
path on every CI run, in about a minute per vendor on 2 cores (each step is a few loopback
requests and a few commits). Hypothesis keeps the failing sequences it finds in its database and
replays them first. For a soak: `ROTATION_MODEL_EXAMPLES=1000 ROTATION_MODEL_STEPS=40 pytest
tests/rotation/test_rotation_model.py` (docs/rotation.md, "Model-based test").
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
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
from connections.rotation import reconcile_rotations, recover_spool, rotate, spool, staged_replace
from connections.rotation.core import lease_seconds
from connections.rotation.late import late_grace, pending_recheck
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from connections.services.testing import connection_test
from connections.services.vault import active_credential
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("empty_spool")]

EXAMPLES = int(os.environ.get("ROTATION_MODEL_EXAMPLES", "20"))
STEPS = int(os.environ.get("ROTATION_MODEL_STEPS", "15"))
ACTOR = Actor(label="model", via="cli")
READ_TIMEOUT = 0.5  # the "timeout" fault stalls the vendor longer than this
FAULTS = ("drop_after_refresh", "garble_after_refresh", "malformed_json", "http500_empty", "429_no_headers",
          "reset", "slow")
KILL_AT = ("claimed", "journaled", "spooled", "committed")


class Killed(BaseException):
    """The rotating worker dies here (SIGKILL in the process tests; an exception nobody catches here)."""


class RotationModel(RuleBasedStateMachine):
    """Shared rules; a subclass names the vendor, its connection and what "accepted" means."""

    vendor_name = ""
    vendors = None  # the sandbox, set by the test function

    def __init__(self):
        super().__init__()
        self.vendors.reset()
        self.connection = self.make_connection()
        self.in_flight_cred = None  # the active credential before the last successful rotation
        self.pasted = 0

    # -- what a subclass defines ------------------------------------------------------
    def make_connection(self):
        raise NotImplementedError

    def accepted(self) -> bool:
        """Does the vendor accept the stored active credential (its state, not a request)?"""
        raise NotImplementedError

    def call_spec(self) -> RequestSpec:
        raise NotImplementedError

    def issue_replacement(self) -> dict:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------
    @property
    def twin(self):
        return self.vendors.vendor(self.vendor_name)

    def fault_pending(self) -> bool:
        return self.vendors.stats(self.vendor_name)["fault"] is not None

    def wait_for_the_vendor(self) -> None:
        """A stalled request ("slow") finishes at the vendor after the client gave up: let it land."""
        deadline = time.monotonic() + 5
        while self.vendors.stats(self.vendor_name).get("in_flight_now", 0) and time.monotonic() < deadline:
            time.sleep(0.05)

    def reload(self):
        self.connection.refresh_from_db()
        return self.connection

    # -- rules ---------------------------------------------------------------------------
    @rule()
    def rotate_now(self):
        before = active_credential(self.connection)
        outcome = rotate(connection=self.reload(), actor=ACTOR)
        if outcome.state == RotationState.SUCCEEDED:
            self.in_flight_cred = before

    @rule(fault=st.sampled_from(FAULTS))
    def rotate_into_a_fault(self, fault):
        """The fault hits the refresh itself (inject_fault may hit any later request)."""
        self.inject_fault(fault)
        self.rotate_now()

    @rule()
    def call(self):
        send(self.reload(), self.call_spec(), actor=ACTOR)

    @precondition(lambda self: self.in_flight_cred is not None)
    @rule()
    def call_in_flight_during_the_last_rotation(self):
        stale = iter([self.in_flight_cred])
        real = client._active_credential
        pending = self.fault_pending()
        accepted = self.accepted()
        with mock.patch("connections.outbound.client._active_credential", side_effect=lambda c: next(stale, None) or real(c)):
            result = send(self.reload(), self.call_spec(), actor=ACTOR)
        if accepted and not pending:
            # (c): the rotation that made this request's secret stale must not make it fail.
            assert result.ok, f"a call in flight failed after a rotation: {result.status_code} {result.error_message}"

    @rule()
    def test_now(self):
        connection_test(connection=self.reload(), actor=ACTOR)

    @rule(fault=st.sampled_from(FAULTS))
    def inject_fault(self, fault):
        params = {"seconds": READ_TIMEOUT * 2} if fault == "slow" else {}
        self.vendors.set_fault(self.vendor_name, fault, count=1, **params)

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
        # The reconciler runs once the dead worker's lease has expired. Its clock jumps minutes ahead,
        # so the vendor must have had those minutes too: a stalled request lands first.
        self.wait_for_the_vendor()
        reconcile_rotations(now=timezone.now() + timedelta(seconds=lease_seconds() + 5))

    @rule()
    def reconcile(self):
        later = max(timedelta(seconds=lease_seconds()), late_grace()) + timedelta(seconds=5)
        self.wait_for_the_vendor()  # (the same jump: what the vendor was still doing has landed)
        reconcile_rotations(now=timezone.now() + later)

    @rule()
    def recover(self):
        recover_spool(actor=ACTOR)

    @precondition(lambda self: self.connection.health == Health.NEEDS_ATTENTION)
    @rule()
    def paste_the_secret_support_issued(self):
        secret = self.issue_replacement()
        staged_replace(connection=self.reload(), secret=secret, actor=ACTOR)

    # -- invariants -----------------------------------------------------------------------
    @invariant()
    def settled_means_accepted_or_needs_attention(self):  # (a)
        self.wait_for_the_vendor()
        connection = self.reload()
        if RotationAttempt.objects.filter(connection=connection, state=RotationState.STARTED).exists():
            return
        if pending_recheck(connection) is not None:
            return  # a timed-out refresh may still land: probed again after the grace (rotation/late.py)
        if spool.pending():
            return  # a spooled secret is the operator's `connections recover` away (needs_attention says so)
        if self.accepted():
            return
        assert connection.health == Health.NEEDS_ATTENTION, (
            f"the vendor refuses the stored credential but health is {connection.health}: {connection.health_reason}")
        assert "Action:" in connection.health_reason or "connections recover" in connection.health_reason, \
            connection.health_reason

    @invariant()
    def never_a_refresh_with_a_rescinded_secret(self):  # (b)
        calls = self.vendors.stats(self.vendor_name)["refresh_calls"]
        assert all(c["token_was_current"] for c in calls), calls


class CleanlistModel(RotationModel):
    vendor_name = "cleanlist"

    def make_connection(self):
        return factories.connection("cleanlist", sandbox=self.vendors, options={
            "test_service": "email_verify", "test_body": '{"email": "ops@example.com"}'})

    def accepted(self) -> bool:
        credential = active_credential(self.connection)
        return credential is not None and self.twin.tokens.get(credential.reveal()["token"]) is not None

    def call_spec(self) -> RequestSpec:
        return RequestSpec("POST", "/email_verify/", json={"email": "a@example.com"})

    def issue_replacement(self) -> dict:
        self.pasted += 1
        token = f"support-issued-{self.pasted}-{time.monotonic_ns()}"
        self.twin.add_credentials({"token": token})
        return {"token": token}


class TeleTrackerSessionModel(RotationModel):
    vendor_name = "teletracker"

    def make_connection(self):
        secret = {**DEMO_CREDENTIALS["teletracker"], "auth_scheme": "bearer_session"}
        connection = factories.connection("teletracker", sandbox=self.vendors, secret=secret)
        send(connection, RequestSpec("GET", "/accounts"), actor=ACTOR)  # the first session
        return connection

    def accepted(self) -> bool:
        """The password is accepted, and any stored session's refresh token is one the vendor honours
        (no session at all is fine: the next call logs in)."""
        credential = active_credential(self.connection)
        secret = credential.reveal()
        if self.twin.check_password(secret["username"], secret["password"]) is None:
            return False
        session = secret.get("session")
        return session is None or self.twin.refresh_tokens.get(session["refresh_token"]) is not None

    def call_spec(self) -> RequestSpec:
        return RequestSpec("GET", "/accounts")

    def issue_replacement(self) -> dict:
        return {**DEMO_CREDENTIALS["teletracker"], "auth_scheme": "bearer_session"}


MODEL_SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.filter_too_much])


@pytest.fixture
def fast_timeouts(settings):
    settings.OUTBOUND_READ_TIMEOUT = READ_TIMEOUT
    settings.OUTBOUND_DEADLINE = 3.0
    # (the probe retries sleep through reconcile.time: replace that name only, not time.sleep itself,
    # which the sandbox uses to stall)
    with mock.patch("connections.outbound.client._sleep"), mock.patch("connections.rotation.reconcile.time"):
        yield


@pytest.mark.parametrize("model", [CleanlistModel, TeleTrackerSessionModel], ids=["cleanlist", "teletracker"])
def test_rotation_model(model, vendors, tune, fast_timeouts):
    if model is TeleTrackerSessionModel:
        tune("teletracker", refresh_rescinds_session=False)  # the harder case: the old access token lives on
    model.vendors = vendors
    run_state_machine_as_test(model, settings=MODEL_SETTINGS)
