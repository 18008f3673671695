"""The Test button and the resume-tests action (HTMX fragments: templates/connections/testing.html)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event
from kombu.exceptions import OperationalError as BrokerUnreachable

from ..formatting import took_text
from ..services.audit import Actor
from ..services.test_runs import test_run_start, test_run_status
from ..services.testing import connection_resume_tests
from .common import HtmxHttpRequest, can, detail_url, get_connection, wants_fragment

RESULT = "connections/testing.html#test-result"
RUNNING = "connections/testing.html#test-running"
log = logging.getLogger(__name__)


BACK = {"list": "connection_list", "overview": "overview"}  # where the button was (the form's "next")


def _back(request: HtmxHttpRequest, name: str):
    page = BACK.get(request.POST.get("next", ""))
    return redirect(page) if page else redirect("connection_detail", name=name)


def _result(request: HtmxHttpRequest, connection, **context) -> TemplateResponse:
    """The result fragment; in an overview row, without the longer explanations (the detail page has them)."""
    context.update(connection=connection, compact=request.POST.get("next") == "overview")
    return TemplateResponse(request, RESULT, context)


def test_allowed(user_id: int) -> bool:
    """A per-user limit on Test (TEST_RATE_PER_MINUTE), counted in the shared cache, so every process agrees."""
    limit = getattr(settings, "TEST_RATE_PER_MINUTE", 10)
    key = f"test-rate:{user_id}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=120)
    return cache.incr(key) <= limit


@require_POST
@can("run_tests")
def test_connection(request: HtmxHttpRequest, name: str):
    """Queue the test (Celery, with a time limit: services/test_runs.py) and answer at once: the
    result if it already finished, else a panel that polls for it."""
    connection = get_connection(name)
    if not test_allowed(request.user.pk):
        limit = getattr(settings, "TEST_RATE_PER_MINUTE", 10)
        return HttpResponse(f"Too many tests: at most {limit} per minute per user. Wait a minute and try again.",
                            status=429, content_type="text/plain; charset=utf-8")
    try:
        run_id = test_run_start(connection=connection, actor=Actor.from_request(request))
    except (BrokerUnreachable, OSError) as exc:  # nothing was queued, nothing sent
        log.warning("could not queue the test of %s: %s", connection.name, type(exc).__name__)
        text = ("The test could not be queued: the task queue is not reachable. Nothing was sent; try again "
                "in a moment.")
        if request.htmx:
            return HttpResponse(text, status=503, content_type="text/plain; charset=utf-8")
        messages.error(request, text)
        return _back(request, connection.name)
    compact = request.POST.get("next") == "overview"
    state = test_run_status(run_id=run_id, connection=connection)
    if request.htmx:
        return _progress(request, connection, run_id, state, compact)
    if state is None or state["state"] != "done":
        messages.info(request, f"Test of {connection.name} queued; its result shows on the connection's page when it "
                               "finishes.")
        return _back(request, connection.name)
    connection.refresh_from_db()
    result = connection.last_test_result or {}
    if result.get("ok"):
        took = took_text(result.get("duration_ms") or 0, result.get("attempts") or 1)
        messages.success(request, f"{connection.name}: test passed (HTTP {result.get('status_code')}, {took}).")
    else:
        status = f"HTTP {result['status_code']}" if result.get("status_code") else result.get("outcome") or "no answer"
        messages.error(request, f"{connection.name}: test failed ({status}): {(result.get('error') or {}).get('message', '')}")
    return _back(request, connection.name)


@require_GET
@can("run_tests")
def test_status(request: HtmxHttpRequest, name: str, run_id: str):
    """The polling panel of a queued test; the result once it is done. Opened directly: the page."""
    connection = get_connection(name)
    if not wants_fragment(request):
        return redirect(detail_url(connection) + "#connection-test")
    state = test_run_status(run_id=run_id, connection=connection)
    return _progress(request, connection, run_id, state, request.GET.get("compact") == "1")


def _progress(request: HtmxHttpRequest, connection, run_id: str, state: dict | None, compact: bool):
    if state is not None and state["state"] != "done" and not state["lost"]:
        poll = reverse("connection_test_status", args=[connection.name, run_id]) + ("?compact=1" if compact else "")
        return TemplateResponse(request, RUNNING, {"connection": connection, "run": state, "poll_url": poll,
                                                   "compact": compact})
    connection.refresh_from_db()
    response = TemplateResponse(request, RESULT, {"connection": connection, "compact": compact, "fresh": True,
                                                  "run": state or {"expired": True}})
    # Every badge of this connection's health on the page follows (app.js: [data-health-of]).
    trigger_client_event(response, "connection-health", {"name": connection.name, "health": connection.health,
                                                         "label": connection.get_health_display()})
    return response


@require_POST
@can("run_tests")
def resume_tests(request: HtmxHttpRequest, name: str):
    connection = get_connection(name)
    connection_resume_tests(connection=connection, actor=Actor.from_request(request))
    if request.htmx:
        return _result(request, connection, resumed=True)
    messages.success(request, f"Scheduled tests of {connection.name} resumed.")
    return _back(request, connection.name)
