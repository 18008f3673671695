"""What a user sees when a URL is refused (issue 12): the reason on the Base URL field, nothing
stored; a failed webhook delivery shows a safe error and only the webhook's scheme and host."""

from __future__ import annotations

import socket

import pytest

from connections import alerts
from connections.alerts.delivery import queue as queue_delivery
from connections.models import Connection
from connections.services.audit import Actor

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]

SECRET_PATH = "/services/T0AAAA/B0BBBB/XyZsEcReTwEbHoOkToKeN"


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}])
def test_a_refused_base_url_is_shown_on_its_field(signed_in_page, settings, screenshot, viewport):
    page = signed_in_page("admin", on="/connections/new/")
    page.set_viewport_size(viewport)
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    page.locator("#id_name").fill("sneaky")
    page.locator("#id_base_url").fill("https://169.254.169.254/latest")
    page.locator("#id_secret_username").fill("ops-user")
    page.locator("#id_secret_password").fill("pw-e2e-123456")
    page.get_by_role("button", name="Create connection").click()
    field = page.locator("#id_base_url").locator("xpath=..")
    text = field.inner_text()
    assert "refused to send to 169.254.169.254: link-local" in text and "Never reachable" in text
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    screenshot(page, f"egress-refused-base-url-{viewport['width']}")
    assert not Connection.objects.filter(name="sneaky").exists()


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}])
def test_a_failed_webhook_shows_host_only(signed_in_page, screenshot, viewport):
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there
    channel = alerts.channel_create(name="slack", kind="webhook", target=f"https://127.0.0.1:{port}{SECRET_PATH}",
                                    actor=Actor(label="admin"))
    [delivery] = queue_delivery(None, subject="[Switchboard] Test alert", channels=[channel], body="hello")
    assert alerts.deliver(delivery.pk, final_attempt=True) == "failed"
    page = signed_in_page("admin", on="/alerts/")
    page.set_viewport_size(viewport)
    body = page.locator("body").inner_text()
    assert "connect: could not connect to 127.0.0.1 (connection refused)" in body
    assert f"https://127.0.0.1:{port}/…" in body and "XyZsEcReT" not in page.content()
    screenshot(page, f"egress-webhook-error-{viewport['width']}")
