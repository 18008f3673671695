"""System tests: the product as users run it (tests/system/harness.py starts the real process tree).

Fixtures:
  product            the running tree, once per session per backend (embedded; postgres = PostgreSQL + Redis)
  signed_in(role)    a fresh Chromium page signed in as "viewer", "operator" or "admin" on that tree; it
                     records every 4xx/5xx response and every console error or uncaught exception, and the
                     test fails on any of them except the 403s it declared with `expect_403(path)` (and
                     other statuses with `expect_status(422, path)`); a declared one never seen fails too

When a test fails, the tail of each process's output (runall, web, worker, beat, sandbox) is added to
its report.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import DESKTOP, TIMEOUT_MS, sign_in
from tests.system import harness

BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.services),
]


@pytest.fixture(scope="session", params=BACKENDS)
def product(request):
    running = harness.start(request.param)
    yield running
    harness.stop(running)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    running = getattr(item, "funcargs", {}).get("product")
    if report.failed and running is not None:
        report.sections.append((f"Switchboard processes ({running.backend})", running.tails()))


@dataclass
class Browsing:
    """A signed-in page and what it saw go wrong."""

    page: object
    role: str
    problems: list[str] = field(default_factory=list)
    allowed: set[tuple[int, str]] = field(default_factory=set)
    seen: set[tuple[int, str]] = field(default_factory=set)

    def expect_403(self, path: str) -> None:
        """Declare a 403 this test means to provoke (a role without the permission)."""
        self.expect_status(403, path)

    def expect_status(self, status: int, path: str) -> None:
        """Declare another 4xx the test means to provoke (e.g. 422, a form's answer to bad input)."""
        self.allowed.add((status, path))

    def on_response(self, response) -> None:
        if response.status < 400:
            return
        path = urlsplit(response.url).path
        if (response.status, path) in self.allowed:
            self.seen.add((response.status, path))
            return
        self.problems.append(f"HTTP {response.status} {response.request.method} {path}")

    def on_console(self, msg) -> None:
        if msg.type != "error":
            return
        text = msg.text
        # Chromium logs every 4xx/5xx as a console error too; the response handler judges those.
        if re.match(r"Failed to load resource: the server responded with a status of \d+", text):
            return
        self.problems.append(f"console.error: {text} at {msg.location.get('url')}")


@pytest.fixture
def signed_in(browser, product):  # browser: tests/conftest.py
    contexts = []
    sessions: list[Browsing] = []

    def _sign_in(role: str, *, viewport=DESKTOP, **context_options) -> Browsing:
        context = browser.new_context(base_url=product.url, viewport=viewport, **context_options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        session = Browsing(page=page, role=role)
        sessions.append(session)
        page.on("response", session.on_response)
        page.on("console", session.on_console)
        page.on("pageerror", lambda exc: session.problems.append(f"uncaught: {exc}"))
        page.on("dialog", lambda dialog: dialog.accept())  # data-confirm: the user says yes
        sign_in(page, role, harness.PASSWORD)
        page.wait_for_url(re.compile(re.escape(product.url) + r"/(\?.*)?$"))
        return session

    yield _sign_in
    for context in contexts:
        context.close()
    problems = [f"{s.role}: {p}" + (f" (x{n})" if n > 1 else "")
                for s in sessions for p, n in Counter(s.problems).items()]
    assert not problems, "The browser saw errors:\n" + "\n".join(problems)
    for s in sessions:
        assert s.seen == s.allowed, f"{s.role}: declared answers never seen: {s.allowed - s.seen}"
