"""Fragment URLs opened as pages, and the overview's Rotate link (issue 11 items 3 and 10).

htmx swaps a partial in; the same URL opened in a tab, pasted, or restored by Back must show the
page with its layout (or redirect to the page that holds the panel), never bare unstyled HTML.
"""

from __future__ import annotations

import re

import pytest

from connections.models import RotationAttempt
from tests import factories
from tests.factories import RequestLogFactory
from tests.urlconf import all_routes, fill

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]
HX = {"HX-Request": "true"}
LAYOUT = re.compile(r'<html lang="en">.*<nav class="nav" aria-label="Main">.*<main id="main"', re.S)
# GET routes that are never a fragment of something else (their own page, or a plain redirect).
NOT_FRAGMENTS = {"login", "logout", "overview", "connection_list", "connection_create", "connection_edit",
                 "connection_secret", "connection_archive", "audit_log", "alert_list", "request_log",
                 "request_detail", "error_history", "connection_errors", "connection_detail"}


@pytest.fixture
def samples(db):
    c = factories.connection("clever", name="frag", secret={"token": "frag-token"})
    log = RequestLogFactory(connection=c, operation="test", path="/v3.0/districts")
    attempt = RotationAttempt.objects.create(connection=c, state="succeeded")
    return {"name": c.name, "pk": log.pk, "batch_id": "0" * 32, "run_id": "0" * 32, "attempt_id": str(attempt.pk),
            "channel": 1, "window": 1, "user_id": 1, "uidb64": "MA", "token": "x",
            "rest": "v3.0/districts"}


def _get_urls(samples) -> dict[str, str]:
    # The egress proxy is an API for applications (any method), no page: tests/system/test_proxy.py.
    return {name: fill(route, samples) for route, name in all_routes() if name not in ("proxy", "proxy_root")}


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


class TestFragmentUrlsOpenedAsPages:
    @pytest.mark.parametrize("name, fragment, page", [
        ("connection_headroom", "headroom", "/connections/frag/#headroom-card"),
        ("connection_rotation", "rotate-panel", "/connections/frag/#rotate"),
        ("connection_rotations", "rotation-history-card", "/connections/frag/#rotation-history-card"),
        ("connection_rotation_status", "Rotated", "/connections/frag/?rotation={attempt_id}#rotate-panel"),
        ("connection_test_status", "no longer known", "/connections/frag/#connection-test"),
    ])  # (rotation_status's fragment, the attempt's outcome, is not what its page shows: only the panel is)
    def test_a_panel_url_redirects_to_the_page_that_holds_it(self, admin, samples, name, fragment, page):
        url = _get_urls(samples)[name]
        swapped = admin.get(url, headers=HX)
        assert swapped.status_code == 200 and fragment in swapped.content.decode()
        assert "<html" not in swapped.content.decode()
        opened = admin.get(url)
        assert opened.status_code == 302 and opened["Location"] == page.format(**samples)
        followed = admin.get(url, follow=True)
        assert LAYOUT.search(followed.content.decode()), f"{url} opened directly has no layout"
        assert 'id="rotate-panel"' in followed.content.decode()

    @pytest.mark.parametrize("url, partial_marker", [
        ("/", '<tbody id="overview-rows"'),
        ("/log/", 'id="log-results"'),
        ("/errors/", 'id="errors-body"'),
        ("/connections/frag/errors/", 'id="errors-body"'),
        ("/connections/frag/?part=credential-card", 'id="credential-card"'),
        ("/audit/", "<tr"),
        ("/alerts/", ""),
    ])
    def test_a_history_restore_gets_the_whole_page(self, admin, samples, url, partial_marker):
        """Back with htmx's history cache off re-fetches the URL with HX-Request: the page, not a fragment."""
        swapped = admin.get(url, headers=HX)
        assert "<html" not in swapped.content.decode() and partial_marker in swapped.content.decode()
        assert "HX-Request" in swapped["Vary"]  # a browser cache keeps page and fragment apart
        restored = admin.get(url, headers={**HX, "HX-History-Restore-Request": "true"})
        assert LAYOUT.search(restored.content.decode())

    def test_every_get_url_opened_directly_shows_the_layout(self, admin, samples):
        """Any URL of the URLconf that answers GET (fragments included) ends on a page with the layout."""
        checked = []
        for name, url in _get_urls(samples).items():
            if name in ("logout", "login"):
                continue
            response = admin.get(url, follow=True)
            if response.status_code in (404, 405):
                continue  # POST-only actions and the unknown sample batch
            assert response.status_code == 200, (name, url, response.status_code)
            assert LAYOUT.search(response.content.decode()), f"{name} ({url}) opened directly has no layout"
            checked.append(name)
        fragments = set(checked) - NOT_FRAGMENTS
        assert {"connection_headroom", "connection_rotation", "connection_rotations",
                "connection_rotation_status", "connection_rotate"} <= fragments


class TestRotateFromTheOverview:
    def test_rotate_link_opens_the_rotate_panel_that_posts(self, operator_client):
        c = factories.connection("cleverbridge", name="bridge-rot")
        html = operator_client.get("/").content.decode()
        href = re.search(r'<a class="btn btn-small" href="([^"]+)">Rotate</a>', html).group(1)
        assert href == f"/connections/{c.name}/#rotate"
        page = operator_client.get(href.split("#")[0]).content.decode()
        assert 'id="rotate"' in page
        assert f'action="/connections/{c.name}/replace/"' in page and 'method="post"' in page

    def test_refresh_vendor_panel_offers_rotate_now(self, operator_client):
        c = factories.connection("cleanlist", name="cl-rot", secret={"token": "t" * 40})
        html = operator_client.get("/").content.decode()
        assert f'href="/connections/{c.name}/#rotate">Rotate</a>' in html
        page = operator_client.get(f"/connections/{c.name}/").content.decode()
        assert f'action="/connections/{c.name}/rotate/"' in page and "Rotate now" in page

    def test_get_on_the_rotate_url_is_not_a_blank_405(self, operator_client):
        c = factories.connection("cleanlist", name="cl-get", secret={"token": "t" * 40})
        response = operator_client.get(f"/connections/{c.name}/rotate/")
        assert response.status_code == 302 and response["Location"] == f"/connections/{c.name}/#rotate"
        assert not RotationAttempt.objects.filter(connection=c).exists()  # a GET never rotates

    def test_viewers_see_no_rotate_link_and_get_403(self, viewer_client):
        c = factories.connection("cleverbridge", name="bridge-view")
        assert ">Rotate</a>" not in viewer_client.get("/").content.decode()
        assert viewer_client.get(f"/connections/{c.name}/rotate/").status_code == 403


class TestActionUrlsOpenedAsPages:
    def test_a_post_only_url_opened_as_a_link_is_a_page_with_a_way_back(self, operator_client):
        c = factories.connection("cleverbridge", name="bridge-405")
        for url in (f"/connections/{c.name}/test/", f"/connections/{c.name}/replace/", "/test-all/"):
            response = operator_client.get(url)
            assert response.status_code == 405 and response["Allow"] == "POST"
            html = response.content.decode()
            assert LAYOUT.search(html) and "This address is an action, not a page" in html, url
            assert 'href="/"' in html

    def test_htmx_keeps_the_bare_405(self, operator_client):
        c = factories.connection("cleverbridge", name="bridge-405h")
        response = operator_client.get(f"/connections/{c.name}/test/", headers=HX)
        assert response.status_code == 405 and response.content == b""
