"""Every page fits: at 1366x768 and 390x844, with a crowded data set (tests/e2e/crowded.py).

For each page in PAGES, as the role that can see it, at both sizes:
- the page does not scroll sideways (document.scrollingElement.scrollWidth <= the viewport width);
- nothing hides content behind a sideways scroll inside its box (a table-wrap, a pre, a card);
- no table sticks out of its card, and every link and button in a table is inside the viewport;
- on phones, tables are cards: the header row is hidden and each cell carries its column's label;
- a screenshot lands in tests/e2e/screenshots/layout-<size>-<page>.png (gitignored) to look at.

PAGES lists every GET page of connections/urls.py and dashboard/urls.py (plus the error pages);
test_every_get_route_is_listed fails when a route is added without a line here.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from connections.models import Connection
from connections.services.archive import connection_archive
from connections.services.audit import Actor
from tests import factories
from tests.e2e import crowded
from tests.e2e.conftest import sign_in, take_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]

SIZES = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}

# (page, role that can see it, path from the crowded data set). Anonymous pages have role None.
PAGES = [
    ("overview", "operator", lambda c: "/"),
    ("test-all-progress-unknown", "operator", lambda c: "/test-all/00000000000000000000000000000000/"),
    ("connection-list", "admin", lambda c: "/connections/"),
    ("connection-create", "admin", lambda c: "/connections/new/"),
    ("connection-detail", "admin", lambda c: f"/connections/{c.first.name}/"),
    ("connection-detail-viewer", "viewer", lambda c: f"/connections/{c.first.name}/"),
    ("connection-archived", "viewer", lambda c: f"/connections/{c.archived.name}/"),
    ("connection-detail-oauth2", "admin", lambda c: f"/connections/{_oauth2_connection().name}/"),
    ("oauth2-callback-stale", "admin", lambda c: "/oauth2/callback/?state=stale&code=stale"),
    ("connection-edit", "admin", lambda c: f"/connections/{c.first.name}/edit/"),
    ("connection-secret", "admin", lambda c: f"/connections/{c.first.name}/secret/"),
    ("connection-errors", "viewer", lambda c: f"/connections/{c.first.name}/errors/"),
    ("connection-headroom", "viewer", lambda c: f"/connections/{c.first.name}/headroom/"),
    ("connection-rotation", "operator", lambda c: f"/connections/{c.first.name}/rotation/"),
    ("connection-rotations", "operator", lambda c: f"/connections/{c.first.name}/rotations/"),
    ("connection-test-status", "operator", lambda c: f"/connections/{c.first.name}/test/{'0' * 32}/"),
    ("connection-rotation-status", "operator",
     lambda c: f"/connections/{c.rotation.connection.name}/rotations/{c.rotation.id}/"),
    ("request-log", "viewer", lambda c: "/log/"),
    ("request-log-filtered", "viewer", lambda c: "/log/?outcome=http_error"),
    ("request-detail", "viewer", lambda c: f"/log/{c.log.pk}/"),
    ("error-history", "viewer", lambda c: "/errors/"),
    ("audit", "viewer", lambda c: "/audit/"),
    ("alerts", "admin", lambda c: "/alerts/"),
    ("alerts-viewer", "viewer", lambda c: "/alerts/"),
    ("forbidden-403", "viewer", lambda c: "/connections/new/"),
    ("not-found-404", "viewer", lambda c: "/connections/no-such-connection/"),
    ("sign-in", None, lambda c: "/accounts/login/"),
    ("vendors", "viewer", lambda c: "/vendors/"),
    ("vendor-upload", "admin", lambda c: "/vendors/upload/"),
    ("users", "admin", lambda c: "/users/"),
    ("applications", "admin", lambda c: "/applications/"),
    ("applications-viewer", "viewer", lambda c: "/applications/"),
    ("user-create", "admin", lambda c: "/users/new/"),
    ("password-change", "viewer", lambda c: "/accounts/password/"),
    ("security-enrol", "viewer", lambda c: "/accounts/security/"),
    ("password-set", None, lambda c: _set_password_link()),
]
# Fragment URLs that, opened directly, would answer a bare fragment: none (they redirect to the page that
# holds them, see tests/views/test_page_fragments.py), so every page is measured.
FRAGMENT_PENDING: set[str] = set()
# The routes PAGES covers, by URL name; POST-only routes are listed apart (they have no page).
ROUTES_COVERED = {
    "overview", "test_all_progress", "connection_list", "connection_create", "connection_detail", "connection_edit",
    "connection_secret", "connection_errors", "connection_headroom", "connection_rotation", "connection_rotations",
    "connection_rotation_status", "connection_test_status", "request_log", "request_detail", "error_history", "audit_log", "alert_list",
    "login", "user_list", "user_create", "password_change", "password_set", "application_list", "oauth2_callback",
    "vendor_list", "vendor_upload",
    "reauth",  # measured at 1366x768 and 390x844 by tests/e2e/test_reauth.py
    "security",
    "two_factor",  # with the Security page's other states, by tests/e2e/test_second_factor.py
}
POST_ONLY = {
    "test_all", "connection_archive", "connection_test", "connection_resume_tests", "alert_channel_create",
    "alert_channel_test", "alert_channel_delete", "alert_rules_update", "connection_alert_rules",
    "maintenance_create", "maintenance_end", "connection_rotate", "connection_replace", "logout",
    "user_role", "user_active", "user_reset_password", "security_recovery_codes", "security_remove", "oauth2_connect",
    "application_create", "application_scope", "application_rotate", "application_revoke",
    "proxy", "proxy_root",  # the egress proxy: an API for applications (any method), no page; tests/system/test_proxy.py
}

# GET routes that answer no page: /metrics is Prometheus text for a scraper (tests/dashboard/test_metrics.py); the
# single sign-on routes redirect to the provider and back (tests/e2e/test_sso.py measures the sign-in
# page with its SSO button and the SSO re-authentication page at both sizes).
NO_PAGE = {"metrics", "oidc_authentication_init", "oidc_authentication_callback"}

def _oauth2_connection() -> Connection:
    """An OAuth 2.0 connection with Connect (its authorization server is never reached here)."""
    existing = Connection.objects.filter(name="oauth2-layout").first()
    return existing or factories.connection(
        "oauth2", name="oauth2-layout", base_url="https://api.example.com",
        secret={"client_id": "switchboard-layout", "client_secret": "layout-secret-value"},
        options={"token_url": "https://auth.example.com/oauth/token", "scope": "read write offline_access",
                 "authorize_url": "https://auth.example.com/oauth/authorize", "test_path": "/v1/me"})


def _set_password_link() -> str:
    """A one-time set-password link of a new user, as an admin's Add user shows it."""
    from django.urls import reverse

    from connections.services.audit import Actor
    from connections.services.users import password_link, user_create

    user = user_create(username="new-operator", role="operator", actor=Actor.cli())
    return reverse("password_set", kwargs=password_link(user=user).url_kwargs)


# Runs in the page: a list of what breaks the layout rules, empty when the page fits.
MEASURE = r"""([phone, vw]) => {
  const problems = [];  // vw: the viewport asked for (a phone's layout viewport widens to fit what overflows)
  const where = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "");
  const doc = document.scrollingElement.scrollWidth;
  if (doc > vw) {
    let widest = null;
    for (const el of document.querySelectorAll("main *, header *")) {
      const r = el.getBoundingClientRect();
      if (r.right > vw + 1 && (!widest || r.right > widest.r)) widest = {el, r: r.right};
    }
    problems.push(`page scrolls sideways: ${doc} px > ${vw} px` + (widest ? ` (widest: ${where(widest.el)}, ${Math.round(widest.r)} px)` : ""));
  }
  for (const el of document.querySelectorAll("main *")) {
    const style = getComputedStyle(el);
    if (!["auto", "scroll"].includes(style.overflowX)) continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      const edge = el.getBoundingClientRect().right;
      const cut = [...el.querySelectorAll("td, th")].find((cell) => cell.getBoundingClientRect().right > edge + 1);
      problems.push(`${where(el)} hides ${el.scrollWidth - el.clientWidth} px behind a sideways scroll` +
                    (cut ? ` (from "${cut.textContent.trim().replace(/\s+/g, " ").slice(0, 60)}")` : ""));
    }
  }
  // Nothing spills out of its card (unless an ancestor inside the card clips it on purpose, e.g. .truncate).
  const clipped = (el, card) => {
    for (let a = el.parentElement; a && a !== card; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return true;
    }
    return false;
  };
  for (const card of document.querySelectorAll("main .card")) {
    const edge = card.getBoundingClientRect().right;
    for (const el of card.querySelectorAll("a, button, input, select, textarea, span, strong, code, time, p, li, h1, h2, h3, td, img, svg, meter, pre, dd")) {
      if (!el.offsetParent || el.getBoundingClientRect().right <= edge + 1 || clipped(el, card)) continue;
      problems.push(`${where(el)} "${el.textContent.trim().slice(0, 40)}" spills out of its card by ${Math.round(el.getBoundingClientRect().right - edge)} px`);
      break;
    }
  }
  for (const table of document.querySelectorAll("main table")) {
    if (!table.offsetParent) continue;
    const box = table.parentElement.getBoundingClientRect();
    const r = table.getBoundingClientRect();
    if (r.right > box.right + 1) problems.push(`${where(table)} sticks out of its box by ${Math.round(r.right - box.right)} px`);
    for (const control of table.querySelectorAll("a, button, input, select")) {
      if (!control.offsetParent) continue;
      const c = control.getBoundingClientRect();
      if (c.right > vw + 1 || c.left < -1) {
        problems.push(`${where(table)}: ${where(control)} "${control.textContent.trim().slice(0, 30)}" is outside the viewport`);
        break;
      }
    }
    if (phone && table.classList.contains("table")) {
      const head = table.tHead;
      if (head && head.getBoundingClientRect().height > 1) problems.push(`${where(table)}: header row still shown on a phone`);
      for (const td of table.querySelectorAll("tbody td")) {
        if (td.classList.contains("empty") || td.colSpan > 1 || !td.textContent.trim()) continue;
        if (td.hasAttribute("data-label") || td.classList.contains("actions")) continue;
        problems.push(`${where(table)}: a cell without its column label ("${td.textContent.trim().slice(0, 30)}")`);
        break;
      }
    }
  }
  return problems;
}"""


def _routes(resolver=None, prefix=""):
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p)
        elif isinstance(p, URLPattern) and p.name:
            yield p.name


def test_every_get_route_is_listed():
    """A new page must be added to PAGES (and ROUTES_COVERED), or to POST_ONLY if it has no page."""
    missing = set(_routes()) - ROUTES_COVERED - POST_ONLY - NO_PAGE
    assert not missing, f"routes with no layout check: {sorted(missing)}"


def _context(browser, live_server, size, errors):
    options = {"viewport": SIZES[size], "base_url": live_server.url}
    if size == "phone":
        options.update(is_mobile=True, has_touch=True)
    context = browser.new_context(**options)
    context.set_default_timeout(60_000)  # full-page screenshots of 50 cards are tall
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: errors.append(f"{page.url}: {msg.text}")
            if msg.type == "error" and "404" not in msg.text and "403" not in msg.text else None)
    return context, page


def _visit_all(browser, live_server, size: str, data, prefix: str, visit=PAGES) -> list[str]:
    users = {role: factories.user(role) for role in ("viewer", "operator", "admin")}
    pages, contexts, errors, problems, measured = {}, [], [], [], 0
    try:
        for name, role, path_of in visit:
            if role not in pages:
                context, page = _context(browser, live_server, size, errors)
                contexts.append(context)
                if role:
                    sign_in(page, users[role].username)
                    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/(\?.*)?$"))
                pages[role] = page
            page = pages[role]
            path = path_of(data)
            page.goto(path)
            page.wait_for_load_state("networkidle")
            if name in FRAGMENT_PENDING and not page.locator("main").count():
                continue
            found = page.evaluate(MEASURE, [size == "phone", SIZES[size]["width"]])
            problems += [f"{size} {name} ({path}): {p}" for p in found]
            take_screenshot(page, f"{prefix}-{size}-{name}")
            measured += 1
    finally:
        for context in contexts:
            context.close()
    assert measured >= len(visit) - len(FRAGMENT_PENDING), f"only {measured} of {len(visit)} pages measured"
    return problems + [f"JS: {e}" for e in errors]


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_fits_with_crowded_data(browser, live_server, size):
    data = crowded.seed()
    problems = _visit_all(browser, live_server, size, data, "layout")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("size", list(SIZES))
def test_every_page_fits_when_empty(browser, live_server, size):
    """Empty states: one fresh connection, no log, no alerts, no rotations."""
    first = factories.connection("clever", name="clever-prod", secret={"token": "t"})

    class Empty:
        pass

    data = Empty()
    data.first = first
    data.rotation = type("R", (), {"connection": first, "id": "00000000-0000-0000-0000-000000000000"})
    data.log = type("L", (), {"pk": 999999})
    data.archived = connection_archive(connection=factories.connection("clever", name="clever-old", secret={"token": "o"}),
                                       actor=Actor(label="layout"))
    problems = _visit_all(browser, live_server, size, data, "empty")
    for connection in Connection.objects.all():  # none left in use: the overview's and the list's first-run states
        connection_archive(connection=connection, actor=Actor(label="layout"))
    first_run = [p for p in PAGES if p[0] in ("overview", "connection-list", "request-log", "audit", "alerts")]
    problems += _visit_all(browser, live_server, size, data, "first-run", visit=first_run)
    assert not problems, "\n".join(problems)
