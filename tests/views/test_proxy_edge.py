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


def _kept(connection) -> None:
    """The database connection as a web thread keeps it between requests (dashboard/wsgi.py): open,
    health checks on, this request's check not done yet."""
    connection.ensure_connection()
    connection.health_check_enabled = True
    connection.health_check_done = False


def test_a_kept_connection_costs_no_health_check_round_trip(client, key, monkeypatch):
    from django.db import connections

    connection = connections["default"]
    _kept(connection)
    checks = []
    monkeypatch.setattr(type(connection), "is_usable", lambda self: checks.append(1) or True)
    response = client.get("/proxy/cb/connection/test", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert checks == []


@pytest.mark.services
def test_a_kept_connection_that_died_is_replaced_and_the_call_goes_through(client, key):
    from django.db import connection, connections

    from connections.models import RequestLog

    _kept(connection)
    dead_pid = connection.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:  # as a database restart would
            cursor.execute("SELECT pg_terminate_backend(%s)", [dead_pid])
    finally:
        other.close()
    response = client.get("/proxy/cb/connection/test", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert connection.connection.info.backend_pid != dead_pid
    assert RequestLog.objects.filter(application="shop", operation="proxy").count() == 1


@pytest.mark.parametrize(("url", "base", "inside"), [
    ("https://v.example/api/orders?x=1", "https://v.example/api", True),
    ("https://v.example/api/", "https://v.example/api/", True),
    ("https://v.example:443/api/a", "https://v.example/api", True),  # same origin, spelled otherwise
    ("https://v.example/apix/a", "https://v.example/api", False),
    ("https://v.example/other", "https://v.example/api", False),
    ("https://v.example.evil.test/api/a", "https://v.example/api", False),
    ("https://v.example@evil.test/api/a", "https://v.example/api", False),
    ("http://v.example/api/a", "https://v.example/api", False),
    ("https://v.example:8443/api/a", "https://v.example/api", False),
    ("https://v.example/api/a b", "https://v.example/api", False),
    ("https://v.example/api/a\\b", "https://v.example/api", False),
    ("https://v.example/api/a", "https://v.example/api?v=2", True),  # a base with a query: compared parsed
])
def test_a_proxied_url_stays_on_the_connections_origin_and_base_path(url, base, inside):
    from connections.proxy.paths import check_within

    assert (check_within(url, base) == "") is inside
