"""static/js/app.js and the htmx configuration in base.html, under a strict Content-Security-Policy.

The real sign-in page (so the real <head>: htmx-config meta, htmx, app.js) is served with
`script-src 'self'; style-src 'self'` added; test elements are injected into it and their endpoints
are answered by Playwright. Any CSP violation or JS error fails the test (see the `page` fixture).
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LOGIN_PATH, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]

CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'"


@pytest.fixture
def ui(page, live_server):
    """The sign-in page under a strict CSP, with `inject(html)` to add elements and `calls` per fake path."""
    calls: dict[str, int] = {}

    def with_csp(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})

    def fake(route):
        path = route.request.url.split(live_server.url, 1)[1].split("?")[0]
        calls[path] = calls.get(path, 0) + 1
        if path == "/ui/poll":
            route.fulfill(status=200, content_type="text/html", body=f"poll {calls[path]}")
        elif path == "/ui/invalid":
            route.fulfill(status=422, content_type="text/html", body='<p class="field-error">Name is taken</p>')
        elif path == "/ui/boom":
            route.fulfill(status=500, content_type="text/html", body="<h1>Server Error (500)</h1>")
        elif path == "/ui/busy":
            route.fulfill(status=429, content_type="text/plain; charset=utf-8",
                          body="Too many tests: at most 10 per minute per user. Wait a minute and try again.")
        elif path == "/ui/down":
            route.abort("connectionrefused")
        else:
            route.fulfill(status=200, content_type="text/html", body="<h1>Submitted</h1>")

    page.route(live_server.url + LOGIN_PATH, with_csp)
    page.route(re.compile(re.escape(live_server.url) + r"/ui/.*"), fake)
    page.goto(LOGIN_PATH)
    wait_until(page, "window.htmx !== undefined")

    def inject(html: str) -> None:
        page.evaluate("""html => {
            const box = document.createElement("section"); box.id = "ui-test"; box.innerHTML = html;
            document.querySelector("main").appendChild(box); htmx.process(box);
        }""", html)

    page.inject = inject
    page.calls = calls
    return page


class TestAppJs:
    def test_copy_button_copies_and_says_copied(self, ui):
        ui.context.grant_permissions(["clipboard-read", "clipboard-write"])
        ui.inject('<button class="copy" data-copy="req_8f3a2">Copy</button>')

        ui.get_by_role("button", name="Copy").click()

        expect(ui.locator(".copy")).to_have_text("Copied")
        assert ui.evaluate("navigator.clipboard.readText()") == "req_8f3a2"
        expect(ui.locator(".copy")).to_have_text("Copy", timeout=3000)

    def test_countdowns_and_relative_times_update(self, ui):
        now = int(time.time())
        ui.inject(f'<span id="soon" data-countdown="{now + 95}"></span><span id="past" data-countdown="{now - 5}"></span>'
                  f'<time id="t" class="ago" datetime="{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 185))}">'
                  'server text</time>')

        expect(ui.locator("#soon")).to_have_text(re.compile(r"^in 1 min 3\d s$"))
        expect(ui.locator("#past")).to_have_text("now")
        expect(ui.locator("#t")).to_have_text("3 min ago")
        first = ui.locator("#soon").inner_text()
        expect(ui.locator("#soon")).not_to_have_text(first, timeout=3000)

    def test_polling_runs_only_while_the_tab_is_visible(self, ui):
        ui.inject('<div id="live" data-poll="1" hx-get="/ui/poll" hx-trigger="poll">initial</div>')

        expect(ui.locator("#live")).to_have_text(re.compile(r"^poll \d+$"), timeout=4000)
        ui.evaluate("Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true})")
        ui.wait_for_timeout(300)
        paused_at = ui.calls["/ui/poll"]
        ui.wait_for_timeout(2500)
        assert ui.calls["/ui/poll"] == paused_at

        ui.evaluate("""() => { Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});
                               document.dispatchEvent(new Event('visibilitychange')); }""")
        expect(ui.locator("#live")).not_to_have_text(f"poll {paused_at}", timeout=3000)

    def test_data_confirm_asks_before_submitting(self, ui, live_server):
        ui.inject('<form method="get" action="/ui/done" data-confirm="Delete clever-prod?">'
                  '<button class="btn">Delete it</button></form>')
        messages = []

        ui.once("dialog", lambda d: (messages.append(d.message), d.dismiss()))
        ui.get_by_role("button", name="Delete it").click()
        ui.wait_for_timeout(300)
        assert messages == ["Delete clever-prod?"] and "/ui/done" not in ui.url

        ui.once("dialog", lambda d: d.accept())
        ui.get_by_role("button", name="Delete it").click()
        expect(ui).to_have_url(re.compile(re.escape(live_server.url) + r"/ui/done\??$"))

    def test_htmx_swaps_422_fragments_and_reports_500_and_network_errors(self, ui, js_errors):
        ui.inject('<div id="target">untouched</div>'
                  '<button hx-get="/ui/invalid" hx-target="#target">Invalid</button>'
                  '<button hx-get="/ui/boom" hx-target="#target">Boom</button>'
                  '<button hx-get="/ui/down" hx-target="#target">Down</button>')

        ui.get_by_role("button", name="Boom").click()
        alert = ui.locator("#messages [data-htmx-error]")
        expect(alert).to_contain_text("server error (500)")
        expect(ui.locator("#target")).to_have_text("untouched")

        ui.get_by_role("button", name="Invalid").click()
        expect(ui.locator("#target .field-error")).to_have_text("Name is taken")

        ui.get_by_role("button", name="Down").click()
        expect(alert).to_contain_text("Cannot reach Switchboard")
        expect(alert).to_have_count(1)
        # The browser and htmx log these failures to the console: expected here, and only these.
        unexpected = [e for e in js_errors if not re.search(r"/ui/(boom|invalid|down)|htmx:(afterRequest|sendError)", e)]
        assert not unexpected
        js_errors.clear()

    def test_a_refusal_in_words_is_shown_in_those_words(self, ui, js_errors):
        """Found clicking through `make run`: the eleventh Test in a minute answered 429 with "Too many
        tests: at most 10 per minute per user. Wait a minute and try again.", and the page said only
        "Too many requests (429). Wait a moment and try again."."""
        ui.inject('<div id="target">untouched</div><button hx-post="/ui/busy" hx-target="#target">Test</button>')
        ui.get_by_role("button", name="Test").click()
        expect(ui.locator("#messages [data-htmx-error]")).to_have_text(
            "Too many tests: at most 10 per minute per user. Wait a minute and try again.")
        expect(ui.locator("#target")).to_have_text("untouched")
        assert all(re.search(r"/ui/busy", e) for e in js_errors)
        js_errors.clear()
