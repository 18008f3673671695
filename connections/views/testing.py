"""The Test button and the resume-tests action (HTMX fragments: templates/connections/testing.html)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from ..services.audit import Actor
from ..services.testing import connection_resume_tests, connection_test
from .common import HtmxHttpRequest, can, get_connection

RESULT = "connections/testing.html#test-result"


def _back(request: HtmxHttpRequest, name: str):
    return redirect("connection_list") if request.POST.get("next") == "list" else redirect("connection_detail",
                                                                                             name=name)


@require_POST
@can("run_tests")
def test_connection(request: HtmxHttpRequest, name: str):
    """Run the test now, synchronously: the client's timeouts bound it (5 s connect, 20 s read)."""
    connection = get_connection(name)
    result = connection_test(connection=connection, actor=Actor.from_request(request))
    if request.htmx:
        return TemplateResponse(request, RESULT, {"connection": connection, "result": result, "fresh": True})
    if result.ok:
        messages.success(request, f"{connection.name}: test passed (HTTP {result.status_code}, {result.duration_ms} ms).")
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
        return TemplateResponse(request, RESULT, {"connection": connection, "resumed": True})
    messages.success(request, f"Scheduled tests of {connection.name} resumed.")
    return _back(request, connection.name)
