"""Generic OAuth 2.0 against a real authorization server (tests/authserver: django-oauth-toolkit
with refresh-token rotation, reuse protection and a grace period of 0)."""

from __future__ import annotations

import time

import pytest
import requests

from connections.models import Connection, CredentialState, Health, RequestLog, RotationAttempt, RotationState
from connections.outbound.client import RequestSpec, send
from connections.outbound.sessions import session_store
from connections.rotation import connections_due_for_refresh
from connections.services.audit import Actor
from connections.services.vault import active_credential
from tests import factories
from tests.authserver.client import digest, new_grant
from tests.authserver.fixture import CLIENT_ID, CLIENT_SECRET
from tests.cli import run_cli
from tests.oauth_faults import AnswerLosingProxy

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("empty_spool")]
ACTOR = Actor(label="tester", via="cli")
ME = RequestSpec("GET", "/api/me")


def make(authserver, *, refresh_token: str | None = "new", token_url: str | None = None, **options):
    secret = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    if refresh_token == "new":
        refresh_token = new_grant(authserver)["refresh_token"]
    if refresh_token:
        secret["refresh_token"] = refresh_token
    return factories.connection("oauth2", base_url=authserver.url, secret=secret, options={
        "token_url": token_url or authserver.token_url, "authorize_url": authserver.authorize_url,
        "test_path": "/api/me", **options})


def refreshes_since(authserver, mark: int) -> list[dict]:
    return [r for r in authserver.token_log()[mark:] if r["grant_type"] == "refresh_token"]


def stored_refresh_token(connection) -> str:
    return active_credential(connection).reveal()["refresh_token"]


class TestClientCredentials:
    def test_cli_add_then_test_gets_one_token_and_reuses_it(self, authserver):
        mark = len(authserver.token_log())
        added = run_cli("add", "cc-api", "--provider", "oauth2", "--base-url", authserver.url,
                        "--option", f"token_url={authserver.token_url}", "--option", "test_path=/api/me",
                        stdin={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        assert added.code == 0, added.err
        assert run_cli("test", "cc-api").code == 0
        assert run_cli("call", "cc-api", "GET", "/api/me").code == 0
        grants = [r["grant_type"] for r in authserver.token_log()[mark:]]
        assert grants == ["client_credentials"]  # the second call used the stored access token
        secret = active_credential(Connection.objects.get(name="cc-api")).reveal()
        shown = run_cli("show", "cc-api", "--json").out
        assert secret["session"]["token"] not in shown and CLIENT_SECRET not in shown

    def test_rotate_asks_for_a_new_access_token(self, authserver):
        connection = make(authserver, refresh_token=None)
        mark = len(authserver.token_log())
        result = run_cli("rotate", connection.name)
        assert result.code == 0 and "asked the token endpoint for an access token" in result.out, result.err
        assert [r["grant_type"] for r in authserver.token_log()[mark:]] == ["client_credentials"]
        assert send(connection, ME, actor=ACTOR).ok

    def test_client_secret_never_in_the_log(self, authserver):
        connection = make(authserver, refresh_token=None, client_auth="post")
        assert send(connection, ME, actor=ACTOR).ok
        rows = RequestLog.objects.filter(connection=connection)
        assert rows.filter(operation="login").exists()
        text = " ".join(r.request_excerpt + r.response_excerpt for r in rows)
        token = active_credential(connection).reveal()["session"]["token"]
        assert CLIENT_SECRET not in text and token not in text and "[REDACTED]" in text

    def test_wrong_client_secret_is_explained(self, authserver):
        connection = factories.connection("oauth2", base_url=authserver.url,
                                          secret={"client_id": CLIENT_ID, "client_secret": "wrong"},
                                          options={"token_url": authserver.token_url, "test_path": "/api/me"})
        result = send(connection, ME, actor=ACTOR)
        assert not result.ok and "invalid_client" in result.error_message


class TestRefreshGrant:
    def test_rotate_refreshes_now_and_the_server_rotates(self, authserver):
        connection = make(authserver)
        first = stored_refresh_token(connection)
        mark = len(authserver.token_log())
        result = run_cli("rotate", connection.name, "--json")
        assert result.code == 0, result.out
        (refresh,) = refreshes_since(authserver, mark)
        assert refresh["status"] == 200 and refresh["presented"] == digest(first)
        second = stored_refresh_token(connection)
        assert second != first and refresh["issued"] == digest(second)
        old = connection.credentials.get(meta__refresh_fingerprint__isnull=False, state=CredentialState.RESCINDED)
        assert old.version == 1
        assert send(connection, ME, actor=ACTOR).data["username"] == "alice"

    def test_an_expired_access_token_is_renewed_on_demand_through_the_journal(self, authserver):
        connection = make(authserver)
        assert send(connection, ME, actor=ACTOR).ok  # first call: no access token yet -> one refresh
        credential = active_credential(connection)
        session = {**credential.reveal()["session"], "expires_at": time.time() - 1}
        session_store(credential=credential, session=session)
        mark = len(authserver.token_log())
        assert send(connection, ME, actor=ACTOR).ok
        assert len(refreshes_since(authserver, mark)) == 1
        assert RotationAttempt.objects.filter(connection=connection, state=RotationState.SUCCEEDED).count() == 2

    def test_scheduler_finds_it_due_before_expiry(self, authserver):
        connection = make(authserver)
        assert send(connection, ME, actor=ACTOR).ok
        connection.refresh_from_db()
        assert connection.next_refresh_at is not None
        from datetime import timedelta

        assert connection.pk not in connections_due_for_refresh()
        assert connection.pk in connections_due_for_refresh(now=connection.next_refresh_at + timedelta(seconds=1))

    def test_revoked_grant_is_invalid_grant_explained_and_not_sent_again(self, authserver):
        connection = make(authserver)
        token = stored_refresh_token(connection)
        requests.post(authserver.url + "/o/revoke_token/", auth=(CLIENT_ID, CLIENT_SECRET), timeout=10,
                      data={"token": token, "token_type_hint": "refresh_token"}).raise_for_status()
        mark = len(authserver.token_log())
        first = run_cli("rotate", connection.name)
        assert first.code == 1
        assert "invalid_grant" in first.err and "press Connect" in first.err
        connection.refresh_from_db()
        assert connection.health == Health.NEEDS_ATTENTION and "press Connect" in connection.health_reason
        again = run_cli("rotate", connection.name)
        assert again.code == 3 and "Nothing was sent" in again.err
        assert len(refreshes_since(authserver, mark)) == 1

    def test_a_replay_attempted_on_purpose_is_refused_before_it_leaves(self, authserver):
        connection = make(authserver)
        spent = stored_refresh_token(connection)
        assert run_cli("rotate", connection.name).code == 0
        current = active_credential(connection)
        mark = len(authserver.token_log())
        # An operator pastes the refresh token that was just rotated.
        replay = run_cli("rotate", connection.name, "--stdin",
                         stdin={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": spent})
        assert replay.code == 3, replay.err
        assert "replay" in replay.err and "Nothing was sent" in replay.err
        assert authserver.token_log()[mark:] == []  # it never left Switchboard
        assert active_credential(connection).pk == current.pk  # the working grant is back in place
        assert send(connection, ME, actor=ACTOR).ok
        assert not authserver.family_revoked(stored_refresh_token(connection))

    def test_pasted_refresh_token_is_used_once_and_kept(self, authserver):
        connection = make(authserver, refresh_token=None)
        pasted = new_grant(authserver, "olga", "olga-password-1")["refresh_token"]
        result = run_cli("rotate", connection.name, "--stdin",
                         stdin={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": pasted})
        assert result.code == 0, result.err
        assert stored_refresh_token(connection) != pasted
        assert send(connection, ME, actor=ACTOR).data["username"] == "olga"

    def test_pasted_dead_refresh_token_changes_nothing(self, authserver):
        connection = make(authserver)
        before = active_credential(connection)
        result = run_cli("rotate", connection.name, "--stdin",
                         stdin={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": "not-a-grant"})
        assert result.code == 1 and "invalid_grant" in result.err and "is active again" in result.err
        assert active_credential(connection).pk == before.pk
        connection.refresh_from_db()
        assert connection.health != Health.NEEDS_ATTENTION


class TestLostAnswers:
    @pytest.mark.parametrize("mode", ["drop", "garble"])
    def test_lost_answer_after_the_server_rotated_needs_attention_never_a_replay(self, authserver, mode):
        with AnswerLosingProxy(authserver.url) as proxy:
            connection = make(authserver, token_url=proxy.url + "/o/token/")
            token = stored_refresh_token(connection)
            mark = len(authserver.token_log())
            proxy.mode = mode
            lost = run_cli("rotate", connection.name)
            assert lost.code == 3, lost.err
            assert "re-authorize: press Connect" in lost.err
            connection.refresh_from_db()
            assert connection.health == Health.NEEDS_ATTENTION
            assert "re-authorize: press Connect" in connection.health_reason
            proxy.mode = "pass"
            again = run_cli("rotate", connection.name)
            assert again.code == 3
            call = send(connection, ME, actor=ACTOR)
            assert not call.ok
        presented = [r["presented"] for r in refreshes_since(authserver, mark)]
        assert presented == [digest(token)]  # sent once: the server rotated, nothing was replayed
        assert not authserver.family_revoked(token)

    def test_call_in_flight_uses_the_rotated_access_token_during_a_recheck_window(self, authserver):
        # Invariant (c), docs/rotation.md "Requests in flight": a call that read the credential
        # before a rotation committed (a refresh token, no access token yet) must not refresh again,
        # which a later lost refresh's recheck window forbids (rotation/late.py): it uses the new one.
        from unittest import mock

        from connections.outbound import client
        from connections.rotation import rotate
        from connections.rotation.late import pending_recheck

        with AnswerLosingProxy(authserver.url) as proxy:
            connection = make(authserver, token_url=proxy.url + "/o/token/", probe="access_token")
            before = active_credential(connection)
            assert rotate(connection=connection, actor=ACTOR).ok
            proxy.arm("reset")
            lost = rotate(connection=connection, actor=ACTOR)
            assert not lost.ok, lost.message
            assert pending_recheck(connection) is not None, (lost.state, lost.message)
            assert pending_recheck(connection) is not None
            mark = len(authserver.token_log())
            stale, real = iter([before]), client._active_credential
            with mock.patch("connections.outbound.client._active_credential",
                            side_effect=lambda c: next(stale, None) or real(c)):
                result = send(connection, ME, actor=ACTOR)
        assert result.ok, result.error_message
        assert refreshes_since(authserver, mark) == []  # no second refresh of the grant

    def test_token_url_on_another_origin_is_bound_and_moving_it_retires_the_secret(self, authserver):
        from connections.services.vault import connection_update

        with AnswerLosingProxy(authserver.url) as proxy:
            connection = make(authserver, token_url=proxy.url + "/o/token/")
            assert send(connection, ME, actor=ACTOR).ok
            options = {**connection.options, "token_url": authserver.token_url}
            connection_update(connection=connection, actor=ACTOR, options=options)
            assert active_credential(connection) is None


class TestOptions:
    def test_bad_options_are_refused_with_the_field(self, authserver):
        result = run_cli("add", "bad-oauth", "--provider", "oauth2", "--base-url", authserver.url,
                         "--option", "token_url=ftp://x/token", "--option", "test_path=https://evil/x",
                         stdin={"client_id": "a", "client_secret": "b"})
        assert result.code == 2 and "token_url" in result.err and "test_path" in result.err
        assert not Connection.objects.filter(name="bad-oauth").exists()

    def test_ad_hoc_calls_may_not_name_the_token_endpoint(self, authserver):
        connection = make(authserver, refresh_token=None)
        result = run_cli("call", connection.name, "POST", authserver.token_url)
        assert result.code == 2
