"""The Applications page and the request log's application filter: every role sees applications and
their use, never a key; admins create (the key shown once, not cached), rotate, scope and revoke."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from connections.models import ApplicationKey, AuditEvent, RequestLog
from connections.services import appkeys as services
from connections.services.audit import Actor
from tests.factories import ConnectionFactory, RequestLogFactory
from tests.views.test_ops_pages import log_ids

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_viewers_see_applications_and_use_but_never_keys(viewer, admin_user):
    conn = ConnectionFactory(name="billing-api")
    issued = services.create_key(name="shop", connections=["billing-api"], actor=Actor(label="t"))
    RequestLog.objects.bulk_create([RequestLogFactory.build(connection=conn, operation="proxy", application="shop") for _ in range(3)]
                                   + [RequestLogFactory.build(connection=conn, operation="call")])
    page = signed_in(viewer).get("/applications/")
    html = page.content.decode()
    assert page.status_code == 200 and "shop" in html and issued.application.prefix in html
    assert issued.key not in html and "Rotate key" not in html and "Create key" not in html
    assert re.search(r'application=shop">3<', html)  # calls in the last 24 h, linked to the filtered log
    assert signed_in(viewer).post("/applications/new/", {"name": "x", "connections": ["billing-api"]}).status_code == 403
    assert signed_in(viewer).post("/applications/shop/revoke/").status_code == 403
    assert ApplicationKey.objects.get(name="shop").revoked_at is None


def test_admin_creates_and_rotates_with_the_key_shown_once(admin_user):
    ConnectionFactory(name="billing-api")
    admin = signed_in(admin_user)
    created = admin.post("/applications/new/", {"name": "shop", "connections": ["billing-api"], "methods": ["GET"]})
    assert created.status_code == 200 and "no-store" in created["Cache-Control"]
    key = re.search(r'value="(sbk_[^"]+)"', created.content.decode()).group(1)
    assert services.authorize(f"Bearer {key}", "billing-api").connection is not None
    assert key not in admin.get("/applications/").content.decode()  # never again

    rotated = admin.post("/applications/shop/rotate/")
    new = re.search(r'value="(sbk_[^"]+)"', rotated.content.decode()).group(1)
    assert new != key and services.authenticate(f"Bearer {key}") is None
    admin.post("/applications/shop/revoke/")
    assert services.authenticate(f"Bearer {new}") is None
    assert {"appkey.create", "appkey.rotate", "appkey.revoke"} <= set(AuditEvent.objects.values_list("action", flat=True))


def test_bad_input_on_the_page_changes_nothing(admin_user):
    ConnectionFactory(name="billing-api")
    bad = signed_in(admin_user).post("/applications/new/", {"name": "Bad Name!", "connections": ["billing-api"]})
    assert bad.status_code == 400 and "lower-case letters" in bad.content.decode()
    none = signed_in(admin_user).post("/applications/new/", {"name": "ok-name"})
    assert none.status_code == 400 and "at least one connection" in none.content.decode()
    assert not ApplicationKey.objects.exists()


def test_request_log_filters_by_application(viewer):
    conn = ConnectionFactory(name="billing-api")
    RequestLog.objects.bulk_create([RequestLogFactory.build(connection=conn, operation="proxy", application="shop", path="/a"),
                                    RequestLogFactory.build(connection=conn, operation="proxy", application="crm", path="/b"),
                                    RequestLogFactory.build(connection=conn, operation="call", path="/c")])
    response = signed_in(viewer).get("/log/?application=shop")
    ids = log_ids(response)
    assert RequestLog.objects.get(pk__in=ids).application == "shop" and len(ids) == 1
    assert "proxy · shop" in response.content.decode()


def test_the_pages_show_how_an_application_calls_through_this_switchboard(admin_user, settings):
    """The Applications page and the page that shows a new key say where to send calls (this
    Switchboard's /proxy/ and a connection of the key's scope), never with the key written in."""
    ConnectionFactory(name="billing-api")
    admin = signed_in(admin_user)
    settings.SITE_URL = ""
    page = admin.get("/applications/").content.decode()
    assert "http://testserver/proxy/billing-api/PATH" in page and "X-Switchboard-Throttled" in page
    settings.SITE_URL = "https://switchboard.example.org"
    created = admin.post("/applications/new/", {"name": "shop", "connections": ["billing-api"]}).content.decode()
    key = re.search(r'value="(sbk_[^"]+)"', created).group(1)
    howto = created[created.index('data-testid="proxy-howto"'):]
    assert "https://switchboard.example.org/proxy/billing-api/PATH" in howto and key not in howto
