"""Labels and units beside controls (the request log's filters, a connection's maintenance form, the
alert rules) at 1366x768 and 390x844: each control sits under its words, in line with its neighbours,
and a unit ("% remaining") is not split over two lines.

Found clicking through `make run`: the "Live tail" checkbox sat above its words, half a row higher
than the inputs beside it, and "Silence alerts for [1] hours" put "hours" on a line of its own
under the box, pushing the box above the Reason box next to it."""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]

BOX = "el => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; }"


def _signed_in(browser, live_server, viewport, role):
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    page = context.new_page()
    sign_in(page, factories.user(role).username)
    page.wait_for_url(f"{live_server.url}/")
    return context, page


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, PHONE], ids=["desktop", "phone"])
def test_live_tail_checkbox_is_on_the_line_of_its_words(browser, live_server, viewport):
    context, page = _signed_in(browser, live_server, viewport, "viewer")
    try:
        page.goto("/log/")
        page.wait_for_load_state("networkidle")  # measured once the page's fragments are in
        label = page.locator("#log-filters label.checkbox")
        box = page.get_by_test_id("filter-tail").evaluate(BOX)
        words = label.evaluate("el => { const r = document.createRange(); r.selectNodeContents(el); "
                               "const rs = [...r.getClientRects()].filter(x => x.width > 8); "
                               "return rs.length ? {top: rs[rs.length-1].top, bottom: rs[rs.length-1].bottom} : null; }")
        middle = (box["top"] + box["bottom"]) / 2
        assert words and words["top"] <= middle <= words["bottom"], (box, words)
        apply_ = page.locator("#log-filters button[type=submit]").evaluate(BOX)
        if viewport["width"] > 1000:  # on one row with Apply, centred on the same line
            assert abs(middle - (apply_["top"] + apply_["bottom"]) / 2) <= 4, (box, apply_)
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_maintenance_hours_box_lines_up_with_the_reason_box(browser, live_server, viewport):
    c = factories.connection("cleanlist", name="quiet-me", secret={"token": "t"})
    context, page = _signed_in(browser, live_server, viewport, "admin")
    try:
        page.goto(f"/connections/{c.name}/")
        page.wait_for_load_state("networkidle")  # measured once the page's fragments are in
        form = page.locator("form[action$='/maintenance/']")
        hours = form.locator("input[name=hours]").evaluate(BOX)
        reason = form.locator("input[name=reason]").evaluate(BOX)
        assert abs(hours["top"] - reason["top"]) <= 2, (hours, reason)
        label = form.locator("label", has=page.locator("input[name=hours]"))
        assert label.evaluate(BOX)["bottom"] <= hours["bottom"] + 1  # no words under the box
        assert "Silence alerts for (hours)" in label.inner_text()
    finally:
        context.close()


def test_a_threshold_unit_is_not_split(browser, live_server):
    """The alert rules on a phone read "10.0 %" / "remaining" and "24.0 hours" / "ahead"."""
    context, page = _signed_in(browser, live_server, PHONE, "admin")
    try:
        page.goto("/alerts/")
        page.wait_for_load_state("networkidle")  # measured once the page's fragments are in
        units = page.locator("td span.small", has_text=re.compile(r"% remaining|hours ahead"))
        assert units.count() == 2
        for i in range(2):
            assert units.nth(i).evaluate("el => el.getClientRects().length") == 1, units.nth(i).inner_text()
    finally:
        context.close()
