"""The Rotate panel in a browser: a TeleTracker bearer-session connection starts its session from
the page (issue 11 item 13), then rotates it; the credential card shows the history's fingerprint."""

from __future__ import annotations

from unittest import mock

import pytest
from playwright.sync_api import expect

from connections.sandbox import DEMO_CREDENTIALS
from tests import factories

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]
DESKTOP = {"width": 1366, "height": 768}


def run_inline(connection_id, **kwargs):
    """The worker, run in the live server's thread when the view queues the task."""
    from connections.rotation.jobs import run_rotation

    run_rotation(connection_id=connection_id, **kwargs)


def test_start_session_then_rotate_now(signed_in_page, vendors, screenshot, phone_page):
    secret = {**DEMO_CREDENTIALS["teletracker"], "auth_scheme": "bearer_session"}
    conn = factories.connection("teletracker", name="tt-session", sandbox=vendors, secret=secret)
    with mock.patch("connections.tasks.rotate_credentials.delay", side_effect=run_inline):
        page = signed_in_page("operator", on=f"/connections/{conn.name}/")
        page.set_viewport_size(DESKTOP)
        page.on("dialog", lambda dialog: dialog.accept())  # the data-confirm before a rotation
        card = page.locator("#credential-card")
        expect(card).to_contain_text("none yet")
        screenshot(page, "rotation-no-session-1366")
        page.get_by_role("button", name="Start session").click()
        expect(page.locator("#rotate-status")).to_contain_text("Started a TeleTracker session", timeout=15_000)
        expect(card).to_contain_text("the rotation history shows")
        first = card.locator("dd span.mono").first.inner_text()
        expect(page.locator("#rotation-history")).to_contain_text(first)
        expect(page.locator("#rotation-history")).to_contain_text("session login")
        screenshot(page, "rotation-session-started-1366")

        page.get_by_role("button", name="Rotate now").click()
        expect(page.locator("#rotate-status")).to_contain_text("Rotated.", timeout=15_000)
        expect(card).not_to_contain_text(first)
        second = card.locator("dd span.mono").first.inner_text()
        expect(page.locator("#rotation-history")).to_contain_text(f"{first} → {second}")
        screenshot(page, "rotation-session-rotated-1366")
    assert vendors.stats("teletracker")["refresh_calls"][-1]["token_was_current"] is True
    user = factories.user("operator")
    from tests.e2e.conftest import sign_in

    sign_in(phone_page, user.username)
    phone_page.wait_for_url("**/")
    phone_page.goto(f"/connections/{conn.name}/")
    expect(phone_page.get_by_role("button", name="Rotate now")).to_be_visible()
    assert phone_page.evaluate("document.scrollingElement.scrollWidth") <= 390
    screenshot(phone_page, "rotation-session-390")


def test_who_rotated_reads_on_one_line(signed_in_page):
    """Found clicking through `make run`: the history's Who column, 5.5rem wide, broke the user
    name "ctoperator" into "ctoperato" / "r"."""
    from django.utils import timezone

    from connections.models import RotationAttempt

    conn = factories.connection("cleanlist", name="demo-cleanlist", secret={"token": "t"})
    now = timezone.now()
    RotationAttempt.objects.create(
        connection=conn, kind="refresh", actor_label="ctoperator", started_at=now, finished_at=now, state="succeeded",
        step="verify", old_fingerprint="bhp5rplastipqyz5", new_fingerprint="liamtebt2pblb4ko",
        vendor_request_id="req_fbb53e16fd6d6bff", error="Test passed: POST /api/pub_echo/: the service is reachable.")
    page = signed_in_page("viewer", on=f"/connections/{conn.name}/")
    page.set_viewport_size(DESKTOP)
    name = page.locator("#rotation-history td.actor").first
    assert name.evaluate("td => { const r = document.createRange(); r.setStart(td.firstChild, 0); "
                         "r.setEnd(td.firstChild, td.firstChild.length); "
                         "return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }") == 1


def test_audit_who_and_action_read_on_one_line(signed_in_page):
    """The audit trail broke "ctoperator" and "rotation.succeeded" inside the word, like the history."""
    from connections.models import AuditEvent

    conn = factories.connection("cleanlist", name="demo-cleanlist", secret={"token": "t"})
    AuditEvent.objects.create(actor_label="ctoperator", action="rotation.succeeded", connection=conn,
                              connection_name=conn.name, ip="127.0.0.1",
                              details={"attempt": "5148e718-7b27-4dea-8dfd-9ab045350a8c", "kind": "refresh",
                                       "old_fingerprint": "bhp5rplastipqyz5", "new_fingerprint": "liamtebt2pblb4ko"})
    page = signed_in_page("viewer", on="/audit/")
    page.set_viewport_size(DESKTOP)
    row = page.locator("#audit-rows tr", has_text="rotation.succeeded").first
    for cell in (row.locator("td").nth(1), row.locator("td").nth(2)):
        assert cell.evaluate("td => { const r = document.createRange(); r.selectNodeContents(td); "
                             "return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }") == 1
