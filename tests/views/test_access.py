"""Sign-in is required everywhere; roles are checked by permission."""

import pytest

from tests import factories
from tests.factories import RequestLogFactory
from tests.urlconf import all_routes, fill

# password_set: the one-time link, checked by its token; metrics: a bearer token (tests/dashboard/test_metrics.py);
# the single sign-on routes start and finish a provider's sign-in (tests/dashboard/test_sso.py).
PUBLIC = {"login", "password_set", "metrics", "oidc_authentication_init", "oidc_authentication_callback"}


@pytest.fixture
def samples(db):
    c = factories.connection("clever", name="sample", secret={"token": "sample-token"})
    log = RequestLogFactory(connection=c, operation="test", path="/v3.0/districts")
    return {"name": c.name, "pk": log.pk, "id": log.pk, "attempt_id": "00000000-0000-0000-0000-000000000000",
            "batch_id": "00000000-0000-0000-0000-000000000000", "run_id": "0" * 32, "user_id": 1, "uidb64": "MA",
            "token": "x"}


@pytest.mark.services
@pytest.mark.django_db
class TestSignInRequired:
    def test_anonymous_is_redirected_from_every_url(self, client, samples):
        # The proxy takes application keys, never sessions: 401, not a sign-in (tests/views/test_authz_matrix.py).
        routes = [(r, n) for r, n in all_routes() if n not in PUBLIC | {"proxy", "proxy_root"}]
        assert len(routes) >= 8
        for route, _name in routes:
            url = fill(route, samples)
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                assert response.status_code == 302, (method, url, response.status_code)
                assert response["Location"].startswith("/accounts/login/"), (method, url)

    def test_sign_in_page_is_public(self, client):
        response = client.get("/accounts/login/")
        assert response.status_code == 200
        assert b"Sign in" in response.content


@pytest.mark.services
@pytest.mark.django_db
class TestRoles:
    def test_viewer_gets_403_on_admin_only_url(self, viewer_client, samples):
        assert viewer_client.get("/connections/new/").status_code == 403

    def test_viewer_reads_everything_readable(self, viewer_client, samples):
        for url in ("/", "/connections/", "/connections/sample/", "/audit/"):
            assert viewer_client.get(url).status_code == 200, url

    def test_roles_are_permission_sets(self, viewer, operator, admin_user):
        assert not viewer.has_perm("connections.run_tests")
        assert operator.has_perm("connections.run_tests") and operator.has_perm("connections.rotate_credentials")
        assert not operator.has_perm("connections.manage_secrets")
        assert admin_user.has_perm("connections.manage_secrets")

    def test_role_shown_in_header(self, operator_client, operator):
        html = operator_client.get("/").content.decode()
        assert operator.username in html and "operator" in html


@pytest.mark.services
@pytest.mark.django_db
class TestSignInProtection:
    def test_repeated_failures_lock_the_account_for_that_address(self, client, viewer):
        from tests.factories import PASSWORD

        for _ in range(4):
            response = client.post("/accounts/login/", {"username": viewer.username, "password": "wrong-password"})
            assert response.status_code == 200
            assert b"correct username and password" in response.content
        fifth = client.post("/accounts/login/", {"username": viewer.username, "password": "wrong-password"})
        assert fifth.status_code == 429
        locked = client.post("/accounts/login/", {"username": viewer.username, "password": PASSWORD})
        assert locked.status_code == 429
        assert b"Too many failed sign-ins" in locked.content
        assert "_auth_user_id" not in client.session

    def test_security_headers(self, viewer_client):
        response = viewer_client.get("/")
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_role_groups_match_roles_module():
    """The data migrations give each group exactly the permissions connections/roles.py declares."""
    from django.contrib.auth.models import Group

    from connections.roles import ROLES

    for role, perms in ROLES.items():
        got = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=role).permissions.all()}
        assert got == set(perms), role


@pytest.mark.django_db
def test_database_outage_gives_a_503_page_not_a_crash(viewer, monkeypatch):
    from django.db import OperationalError
    from django.test import Client

    from connections.views import ops

    def down(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(ops.selectors, "overview", down)
    client = Client(raise_request_exception=False)
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert b"The database is unavailable" in response.content and b"127.0.0.1" not in response.content


@pytest.mark.django_db
def test_error_pages_fit_a_phone_and_carry_the_icon(viewer, monkeypatch):
    """The 500 and 503 pages are plain HTML (no template context to fail): they still scale to a
    phone's width (viewport) and name the site's icon, so a browser does not ask for a missing
    /favicon.ico on top of the error."""
    from django.db import OperationalError
    from django.test import Client

    from connections.views import ops

    client = Client(raise_request_exception=False)
    client.force_login(viewer)
    for error, status in ((RuntimeError("boom"), 500), (OperationalError("down"), 503)):
        def fail(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(ops.selectors, "overview", fail)
        page = client.get("/")
        assert page.status_code == status
        assert b'name="viewport" content="width=device-width, initial-scale=1"' in page.content
        assert b'rel="icon" href="/static/favicon.svg"' in page.content
