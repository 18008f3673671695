"""The audit trail's filters. Found clicking through `make run`: scheduled tests write an event per
connection every 5 minutes, so "who replaced this secret?" meant paging through hundreds of
connection.test rows; now Show: Changes only, and Who."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from connections.models import AuditEvent
from connections.selectors import vault as vault_selectors
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def rows(response) -> list[str]:
    body = response.content.decode().split('id="audit-rows"', 1)[1]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in body.split("<tr")[1:]]


@pytest.fixture
def trail():
    c = factories.connection("cleanlist", name="demo-cleanlist", secret={"token": "t"})
    now = timezone.now()
    events = [AuditEvent(actor_label="scheduler", action="connection.test", connection=c, connection_name=c.name,
                         at=now - timedelta(minutes=i)) for i in range(60)]
    events += [AuditEvent(actor_label="ctadmin", action="secret.replace", connection=c, connection_name=c.name,
                          at=now - timedelta(minutes=30, seconds=30)),
               AuditEvent(actor_label="ctoperator", action="rotation.succeeded", connection=c, connection_name=c.name,
                          at=now - timedelta(minutes=45, seconds=30))]
    AuditEvent.objects.bulk_create(events)
    return c


def test_changes_only_hides_tests(viewer_client, trail):
    response = viewer_client.get("/audit/?show=changes")
    found = rows(response)
    assert any("secret.replace" in r for r in found) and any("rotation.succeeded" in r for r in found)
    assert not any("connection.test" in r for r in found)
    assert '<option value="changes" selected>' in response.content.decode()


def test_who_and_the_next_page_keep_the_filters(viewer_client, trail, monkeypatch):
    monkeypatch.setattr(vault_selectors, "AUDIT_PAGE_SIZE", 20)
    first = viewer_client.get(f"/audit/?who=scheduler&connection={trail.name}")
    found = rows(first)
    assert found and all("scheduler" in r for r in found if "connection.test" in r or "secret" in r)
    assert not any("ctadmin" in r for r in found)
    html = first.content.decode()
    more = re.search(r'href="\?before=(\d+)&(?:amp;)?([^"]+)"', html)
    assert more and "who=scheduler" in more.group(2) and f"connection={trail.name}" in more.group(2)
    older = viewer_client.get(f"/audit/?before={more.group(1)}&" + more.group(2).replace("&amp;", "&"),
                              headers={"HX-Request": "true"})
    assert older.status_code == 200 and "ctadmin" not in older.content.decode()


def test_nothing_matches_says_so_and_hostile_input_is_harmless(viewer_client, trail):
    response = viewer_client.get("/audit/", {"who": "<script>x</script>", "show": "bogus", "before": "zzz"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>x</script>" not in html and "No events match these filters." in html
