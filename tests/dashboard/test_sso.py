"""Single sign-on in one process (the flow end to end is tests/e2e/test_sso.py): off without a client
id; a provider that cannot be reached is a message, and the password sign-in does not need it."""

from __future__ import annotations

import pytest
from django.test import Client

from tests import factories
from tests.receivers import free_port

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def test_off_without_a_client_id(settings):
    settings.OIDC_RP_CLIENT_ID = ""
    assert Client().get("/oidc/authenticate/").status_code == 404
    assert Client().get("/oidc/callback/?code=x&state=y").status_code == 404
    assert b"Sign in with" not in Client().get("/accounts/login/").content


def test_provider_down_is_a_message_and_passwords_still_work(settings):
    settings.OIDC_RP_CLIENT_ID = "switchboard"
    settings.OIDC_RP_CLIENT_SECRET = "s"
    settings.OIDC_OP_DISCOVERY_URL = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"
    settings.OIDC_ROLE_MAP = {"ops": "operator"}
    settings.OIDC_PROVIDER_NAME = "Corp SSO"
    client = Client()
    assert b"Sign in with Corp SSO" in client.get("/accounts/login/").content
    response = client.get("/oidc/authenticate/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert b"Corp SSO cannot be reached right now" in response.content
    user = factories.user("admin", username="breakglass")
    signed_in = client.post("/accounts/login/", {"username": user.username, "password": factories.PASSWORD})
    assert signed_in.status_code == 302 and client.get("/").status_code == 200
