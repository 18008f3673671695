"""The /proxy/ edge (connections/proxy/edge.py): a bearer-key call skips the session machinery but
keeps the security headers and request ids of every page; a session never stands in for a key."""

import pytest

from connections.services import appkeys
from connections.services.audit import Actor
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key(vendors):
    factories.connection("cleverbridge", name="cb", sandbox=vendors)
    return appkeys.create_key(name="shop", connections=["cb"], actor=Actor(label="t")).key


def test_proxied_answer_has_security_headers_and_ids_but_no_session(client, key):
    response = client.get("/proxy/cb/connection/test", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert response["X-Switchboard-Request-Id"] and response["X-Request-Id"]
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Length"] == str(len(response.content))
    assert not response.cookies  # no session, no CSRF cookie


def test_a_signed_in_session_does_not_open_the_proxy(admin_client_, key):
    response = admin_client_.get("/proxy/cb/connection/test")
    assert response.status_code == 401
    assert response["X-Switchboard-Error"] == "unauthenticated"
