"""Declarative vendors with an OAuth 2.0 scheme, against the real authorization server
(tests/authserver: django-oauth-toolkit with refresh-token rotation and reuse protection): the
definition supplies hosts, tests and envelopes; the oauth2 provider's mechanics do the tokens."""

from __future__ import annotations

import pytest

from connections.models import Connection, CredentialState
from connections.outbound.client import RequestSpec, send
from connections.providers import PROVIDERS
from connections.services.audit import Actor
from connections.services.vault import active_credential
from tests.authserver.client import digest, new_grant
from tests.authserver.fixture import CLIENT_ID, CLIENT_SECRET
from tests.cli import run_cli
from tests.providers.test_vendors import providers_dir, write  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("empty_spool")]
ACTOR = Actor(label="tester", via="cli")

DEFINITION = """\
key: {key}
name: Example API ({scheme})
allowed_hosts: [api.example.test, auth.example.test]
base_url: https://api.example.test
auth:
  scheme: {scheme}
  token_url: https://auth.example.test/o/token/
  scope: read
  client_auth: basic
tests:
  - path: /api/me
    proves: the token endpoint issues tokens for this client and the API accepts them
errors:
  message: [/error_description, /detail]
"""


def define(folder, scheme: str) -> str:
    key = "cc-example" if scheme == "oauth2_client_credentials" else "rt-example"
    write(folder, f"{key}.yaml", DEFINITION.format(key=key, scheme=scheme))
    assert key in PROVIDERS, [str(p) for f in PROVIDERS.files() for p in f.problems]
    return key


def add(key: str, authserver, name: str, **secret) -> Connection:
    result = run_cli("add", name, "--provider", key, "--base-url", authserver.url,
                     "--option", f"token_url={authserver.token_url}",
                     stdin={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **secret})
    assert result.code == 0, result.err
    return Connection.objects.get(name=name)


class TestClientCredentials:
    def test_add_test_and_call_with_one_token(self, providers_dir, authserver):  # noqa: F811
        key = define(providers_dir, "oauth2_client_credentials")
        mark = len(authserver.token_log())
        connection = add(key, authserver, "cc-1")
        assert run_cli("test", "cc-1").code == 0
        assert send(connection, RequestSpec("GET", "/api/me"), actor=ACTOR).ok
        assert [r["grant_type"] for r in authserver.token_log()[mark:]] == ["client_credentials"]
        secret = active_credential(connection).reveal()
        shown = run_cli("show", "cc-1", "--json").out
        assert secret["session"]["token"] not in shown and CLIENT_SECRET not in shown

    def test_a_token_url_off_the_allowed_hosts_is_refused(self, providers_dir, authserver):  # noqa: F811
        key = define(providers_dir, "oauth2_client_credentials")
        result = run_cli("add", "cc-2", "--provider", key, "--base-url", authserver.url,
                         "--option", "token_url=https://tokens.elsewhere.example/o/token/",
                         stdin={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        assert result.code == 2 and "not one of the hosts" in result.err
        assert not Connection.objects.filter(name="cc-2").exists()

    def test_wrong_client_secret_is_explained(self, providers_dir, authserver):  # noqa: F811
        key = define(providers_dir, "oauth2_client_credentials")
        connection = add(key, authserver, "cc-3")
        credential = active_credential(connection)
        from connections.crypto import Sealed, encrypt_json

        type(credential).objects.filter(pk=credential.pk).update(
            secret=Sealed(encrypt_json({"client_id": CLIENT_ID, "client_secret": "wrong"})))
        result = send(connection, RequestSpec("GET", "/api/me"), actor=ACTOR)
        assert not result.ok and "invalid_client" in result.error_message


class TestRefreshToken:
    def test_rotate_refreshes_once_and_the_server_rotates(self, providers_dir, authserver):  # noqa: F811
        key = define(providers_dir, "oauth2_refresh")
        first = new_grant(authserver)["refresh_token"]
        connection = add(key, authserver, "rt-1", refresh_token=first)
        mark = len(authserver.token_log())
        assert run_cli("rotate", "rt-1", "--json").code == 0
        (refresh,) = [r for r in authserver.token_log()[mark:] if r["grant_type"] == "refresh_token"]
        assert refresh["status"] == 200 and refresh["presented"] == digest(first)
        second = active_credential(connection).reveal()["refresh_token"]
        assert second != first and refresh["issued"] == digest(second)
        assert connection.credentials.filter(state=CredentialState.RESCINDED, version=1).exists()
        assert send(connection, RequestSpec("GET", "/api/me"), actor=ACTOR).data["username"] == "alice"

    def test_a_replay_on_purpose_is_refused_before_it_leaves(self, providers_dir, authserver):  # noqa: F811
        key = define(providers_dir, "oauth2_refresh")
        spent = new_grant(authserver)["refresh_token"]
        add(key, authserver, "rt-2", refresh_token=spent)
        assert run_cli("rotate", "rt-2").code == 0
        mark = len(authserver.token_log())
        replay = run_cli("rotate", "rt-2", "--stdin",
                         stdin={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": spent})
        assert replay.code == 3 and "Nothing was sent" in replay.err
        assert authserver.token_log()[mark:] == []
