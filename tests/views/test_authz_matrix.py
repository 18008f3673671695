"""The authorization matrix: every URL of the URLconf × anonymous, viewer, operator, admin × GET and POST.

The expected answer is written here, per URL name (EXPECTED: the least role that may use it), not
read from the view: a view whose @can(...) changes fails this test until the table changes too. A
new route must be added to the table. Anonymous users are sent to sign in; a role below the
route's gets 403. CSRF is enforced on every POST, htmx requests included.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import resolve

from connections.models import AlertChannel, MaintenanceWindow
from tests import factories
from tests.factories import RequestLogFactory
from tests.urlconf import all_routes, fill

pytestmark = [pytest.mark.services, pytest.mark.django_db]
# password_set: the one-time link, checked by its token; metrics: a bearer token (tests/dashboard/test_metrics.py).
PUBLIC = {"login", "logout", "password_set", "metrics", "oidc_authentication_init", "oidc_authentication_callback"}
# Your own account (change or confirm your password, your second factor): every signed-in user.
SIGNED_IN = {"password_change", "reauth", "two_factor", "security", "security_recovery_codes", "security_remove"}
RANK = {"anonymous": 0, "viewer": 1, "operator": 2, "admin": 3}
# The least role that may use each route (GET and POST alike).
EXPECTED = {
    # operations pages
    "overview": "viewer",
    "test_all": "operator",
    "test_all_progress": "viewer",
    "request_log": "viewer",
    "request_detail": "viewer",
    "error_history": "viewer",
    "connection_errors": "viewer",
    "connection_headroom": "viewer",
    # connections and their secrets
    "connection_list": "viewer",
    "connection_detail": "viewer",
    "connection_create": "admin",
    "connection_edit": "admin",
    "connection_secret": "admin",
    "connection_archive": "admin",
    "audit_log": "viewer",
    # testing
    "connection_test": "operator",
    "connection_test_status": "operator",
    "connection_resume_tests": "operator",
    # rotation
    "connection_rotation": "viewer",
    "connection_rotations": "viewer",
    "connection_rotation_status": "viewer",
    "connection_rotate": "operator",
    "connection_replace": "operator",
    # OAuth 2.0 Connect (authorization code + PKCE): a new secret, so admins
    "oauth2_connect": "admin",
    "oauth2_callback": "admin",
    # alerts
    "alert_list": "viewer",
    "alert_channel_create": "admin",
    "alert_channel_test": "admin",
    "alert_channel_delete": "admin",
    "alert_rules_update": "admin",
    "connection_alert_rules": "admin",
    "maintenance_create": "admin",
    "maintenance_end": "admin",
    # users
    "user_list": "admin",
    "user_create": "admin",
    "user_role": "admin",
    "user_active": "admin",
    "user_reset_password": "admin",
    # vendors (built-in and declarative)
    "vendor_list": "viewer",
    "vendor_upload": "admin",
    # applications of the egress proxy
    "application_list": "viewer",
    "application_create": "admin",
    "application_scope": "admin",
    "application_rotate": "admin",
    "application_revoke": "admin",
}
KEY_AUTH = {"proxy", "proxy_root"}  # the egress proxy: an application key, never a session (tests/system/test_proxy.py)


@pytest.fixture
def samples(db):
    from django.utils import timezone

    c = factories.connection("clever", name="matrix", secret={"token": "matrix-token"})
    log = RequestLogFactory(connection=c, operation="test", path="/v3.0/districts", outcome="http_error",
                            status_code=500)
    channel = AlertChannel.objects.create(name="m", kind="email", config={"to": ["a@example.com"]},
                                          display_target="a@example.com")
    window = MaintenanceWindow.objects.create(connection=c, starts_at=timezone.now(), ends_at=timezone.now())
    target = factories.user("viewer", username="matrix-target")
    return {"name": c.name, "pk": log.pk, "batch_id": "0" * 32, "run_id": "0" * 32,
            "attempt_id": "00000000-0000-0000-0000-000000000000",
            "channel": channel.pk, "window": window.pk, "user_id": target.pk, "uidb64": "MA", "token": "expired-token",
            "rest": "v3.0/districts"}


def _sample_values(route: str, samples: dict) -> dict:
    values = dict(samples)
    if "channels/<int:pk>" in route:
        values["pk"] = samples["channel"]
    if "maintenance/<int:pk>" in route:
        values["pk"] = samples["window"]
    return values


def protected_routes(samples):
    routes = []
    for route, name in all_routes():
        if name in PUBLIC | SIGNED_IN | KEY_AUTH:
            continue
        url = fill(route, _sample_values(route, samples))
        routes.append((name, url, resolve(url).func))
    return routes


def test_every_view_declares_a_permission(samples):
    missing = [name for name, url, func in protected_routes(samples) if not getattr(func, "required_permission", None)]
    assert missing == [], f"views without @can(...): {missing}"


def test_the_table_names_every_route(samples):
    names = {name for name, _url, _func in protected_routes(samples)}
    assert names - set(EXPECTED) == set(), "new routes: add each to EXPECTED with the least role that may use it"
    assert set(EXPECTED) - names == set(), "EXPECTED names routes that no longer exist"


@pytest.mark.parametrize("role", ["anonymous", "viewer", "operator", "admin"])
def test_matrix(role, samples):
    client = Client()
    if role != "anonymous":
        client.force_login(factories.user(role))
    failures = []
    for name, url, _func in protected_routes(samples):
        least = EXPECTED.get(name)
        if least is None:
            continue  # test_the_table_names_every_route reports it
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            status = response.status_code
            if role == "anonymous":
                ok = status == 302 and response["Location"].startswith("/accounts/login/")
            elif RANK[role] >= RANK[least]:
                ok = status not in (403,) and not (status == 302 and "/accounts/login/" in response.get("Location", ""))
            else:
                ok = status == 403
            if not ok:
                failures.append(f"{method.upper()} {url} ({name}, for {least} and above) -> {status}")
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("role", ["anonymous", "viewer", "operator", "admin"])
def test_the_proxy_takes_application_keys_never_sessions(role, samples):
    """A signed-in session (any role) is no key: the proxy answers 401 JSON, and never redirects to sign in."""
    client = Client()
    if role != "anonymous":
        client.force_login(factories.user(role))
    routes = [fill(route, samples) for route, name in all_routes() if name in KEY_AUTH]
    assert len(routes) == 2
    for url in routes:
        for method in ("get", "post", "delete"):
            response = getattr(client, method)(url)
            assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated", url


@pytest.mark.parametrize("role", ["anonymous", "viewer", "operator", "admin"])
def test_account_pages(role, samples):
    """Your own password page: every signed-in user, no one else. The set-password link: anyone
    (its token is the check; a bad one shows "This link no longer works")."""
    client = Client()
    if role != "anonymous":
        client.force_login(factories.user(role))
    routes = {name: fill(route, samples) for route, name in all_routes() if name in SIGNED_IN | {"password_set"}}
    assert set(routes) == SIGNED_IN | {"password_set"}
    page = client.get(routes["password_change"])
    if role == "anonymous":
        assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")
    else:
        assert page.status_code == 200 and b"Change your password" in page.content
    link = client.get(routes["password_set"])
    assert link.status_code == 200 and b"This link no longer works" in link.content
    assert client.post(routes["password_set"], {"new_password1": "x", "new_password2": "x"}).status_code == 200


def test_account_posts_need_csrf(samples):
    client = Client(enforce_csrf_checks=True)
    client.force_login(factories.user("viewer"))
    for route, name in all_routes():
        if name in SIGNED_IN | {"password_set"}:
            assert client.post(fill(route, samples), {}).status_code == 403, name


@pytest.mark.parametrize("htmx", [False, True])
def test_csrf_is_enforced_on_every_post(samples, htmx):
    admin = factories.user("admin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    headers = {"HX-Request": "true"} if htmx else {}
    failures = []
    for name, url, _func in protected_routes(samples):
        response = client.post(url, {}, headers=headers)
        if response.status_code != 403:
            failures.append(f"POST {url} ({name}) without a CSRF token -> {response.status_code}")
    assert failures == [], "\n".join(failures)


def test_htmx_post_with_the_page_token_passes_csrf(samples):
    """The token base.html puts in hx-headers is accepted (so the 403s above are CSRF, not permissions)."""
    admin = factories.user("admin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    page = client.get("/")
    token = page.context["csrf_token"]
    response = client.post("/alerts/rules/", {}, headers={"HX-Request": "true", "X-CSRFToken": str(token)})
    assert response.status_code == 302
    assert not isinstance(page.wsgi_request.user, AnonymousUser)
