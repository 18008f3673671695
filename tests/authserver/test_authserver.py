"""The test authorization server behaves like the RFC 9700 servers Switchboard must survive."""

from __future__ import annotations

import base64
import json

import requests

from tests.authserver.client import (
    call_api,
    code_from,
    exchange_code,
    new_grant,
    refresh,
    sign_in_and_authorize,
)
from tests.authserver.fixture import CLIENT_ID, CLIENT_SECRET


class TestRefreshRotation:
    def test_each_refresh_rotates_and_the_api_takes_the_new_access_token(self, authserver):
        grant = new_grant(authserver)
        assert call_api(authserver, grant["access_token"]).json()["username"] == "alice"
        status, second = refresh(authserver, grant["refresh_token"])
        assert status == 200 and second["refresh_token"] != grant["refresh_token"]
        assert call_api(authserver, second["access_token"]).status_code == 200
        assert call_api(authserver, "not-a-token").status_code in (401, 403)

    def test_a_replayed_refresh_token_is_refused_and_revokes_the_whole_family(self, authserver):
        grant = new_grant(authserver)
        status, second = refresh(authserver, grant["refresh_token"])
        assert status == 200
        status, body = refresh(authserver, grant["refresh_token"])  # the replay
        assert (status, body["error"]) == (400, "invalid_grant")
        # Reuse protection: the newest token of the family is dead too.
        status, body = refresh(authserver, second["refresh_token"])
        assert (status, body["error"]) == (400, "invalid_grant")
        log = authserver.token_log()
        assert [r["error"] for r in log if r["presented"]][-2:] == ["invalid_grant", "invalid_grant"]


class TestAuthorization:
    def test_pkce_is_required(self, authserver):
        answer, _ = sign_in_and_authorize(authserver, "alice", "alice-password-1", pkce=False)
        assert "code=" not in answer.headers.get("Location", "")

    def test_consent_page_then_code_then_tokens(self, authserver):
        answer, verifier = sign_in_and_authorize(authserver, "olga", "olga-password-1")
        assert answer.status_code == 302
        tokens = exchange_code(authserver, code_from(answer), verifier)
        assert call_api(authserver, tokens["access_token"]).json()["username"] == "olga"

    def test_client_credentials(self, authserver):
        r = requests.post(authserver.token_url, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10,
                          data={"grant_type": "client_credentials"})
        assert r.status_code == 200 and "refresh_token" not in r.json()
        assert call_api(authserver, r.json()["access_token"]).json()["client_id"] == CLIENT_ID


class TestOpenIDConnect:
    def test_discovery_and_groups_claim_in_the_id_token(self, authserver):
        config = requests.get(authserver.discovery_url, timeout=10).json()
        assert config["issuer"] == authserver.url + "/o"
        tokens = new_grant(authserver, "alice", "alice-password-1", scope="openid email profile")
        payload = tokens["id_token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["groups"] == ["switchboard-admins"] and claims["email"] == "alice@example.test"
        info = requests.get(config["userinfo_endpoint"], timeout=10,
                            headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
        assert info["groups"] == ["switchboard-admins"] and info["preferred_username"] == "alice"
        assert requests.get(config["jwks_uri"], timeout=10).json()["keys"][0]["kty"] == "RSA"
