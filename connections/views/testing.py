"""The Test button and the resume-tests action (HTMX fragments: templates/connections/testing.html)."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from ..formatting import took_text
from ..services.audit import Actor
from ..services.testing import connection_resume_tests, connection_test
from .common import HtmxHttpRequest, can, get_connection

RESULT = "connections/testing.html#test-result"


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
    """Run the test now, synchronously: the client's timeouts bound it (5 s connect, 20 s read)."""
    connection = get_connection(name)
    if not test_allowed(request.user.pk):
        limit = getattr(settings, "TEST_RATE_PER_MINUTE", 10)
        return HttpResponse(f"Too many tests: at most {limit} per minute per user. Wait a minute and try again.",
                            status=429, content_type="text/plain; charset=utf-8")
    result = connection_test(connection=connection, actor=Actor.from_request(request))
    if request.htmx:
        response = _result(request, connection, result=result, fresh=True)
        # Every badge of this connection's health on the page follows (app.js: [data-health-of]).
        trigger_client_event(response, "connection-health", {"name": connection.name, "health": connection.health,
                                                             "label": connection.get_health_display()})
        return response
    if result.ok:
        took = took_text(result.duration_ms, result.attempts)
        messages.success(request, f"{connection.name}: test passed (HTTP {result.status_code}, {took}).")
    else:
        status = f"HTTP {result.status_code}" if result.status_code else result.outcome
        messages.error(request, f"{connection.name}: test failed ({status}): {result.error_message}")
    return _back(request, connection.name)


@require_POST
@can("run_tests")
def resume_tests(request: HtmxHttpRequest, name: str):
    connection = get_connection(name)
    connection_resume_tests(connection=connection, actor=Actor.from_request(request))
    if request.htmx:
        return _result(request, connection, resumed=True)
    messages.success(request, f"Scheduled tests of {connection.name} resumed.")
    return _back(request, connection.name)
