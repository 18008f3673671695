"""What the system tests do on pages more than once."""

from __future__ import annotations

import re

from playwright.sync_api import expect

# A passed connection test, as the pages show it: the word "ok" (not inside "token" or "took").
OK = re.compile(r"\bok\b")
# A vendor test with retries and backoff on a loaded machine.
SLOW_MS = 30_000


def press_test(page, name: str, *, within=None, timeout: float = SLOW_MS):
    """Press a connection's Test button (in `within`, default its test panel) and wait for its result:
    the test runs in a Celery worker and the panel polls until it is in (the result already on the
    page may be an older test's). Returns the POST's answer."""
    scope = within if within is not None else page.locator(f"#test-panel-{name}")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(f"/connections/{name}/test/"),
                              timeout=timeout) as answer:
        scope.get_by_role("button", name="Test", exact=True).click()
    expect(scope.get_by_test_id("test-running")).to_have_count(0, timeout=timeout)
    return answer.value
