"""Operations pages: overview (+ Test all), request log, error details, error history, headroom.

htmx requests get the page's partial ("page.html#partial"); the same URL without htmx renders
the whole page, so every view works without JavaScript and can be shared as a link.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url, trigger_client_event

from .. import selectors
from ..services import batch as batch_services
from ..services.audit import Actor
from .common import HtmxHttpRequest, can, detail_url, fragment_or_page, get_connection, render, wants_fragment


@require_GET
@can("view_connection")
def overview(request: HtmxHttpRequest):
    if request.GET.get("part") == "summary" and wants_fragment(request):
        # The summary tiles refresh on their own (after a Test, Test all or the periodic poll).
        return render(request, "connections/overview.html", "health-summary",
                      {"health_counts": selectors.health_counts(), "poll_seconds": 15})
    page = request.GET.get("page", "")
    context = selectors.overview(page=int(page) if page.isdigit() and len(page) < 7 else 1)
    batch_id = request.GET.get("batch", "")
    if batch_services.valid_batch_id(batch_id):
        context["batch"] = batch_services.batch_progress(batch_id=batch_id)
    return render(request, "connections/overview.html", "overview-rows", context)


@require_POST
@can("run_tests")
def test_all(request: HtmxHttpRequest):
    progress = batch_services.test_all_start(actor=Actor.from_request(request))
    if not wants_fragment(request):
        return redirect(f"{reverse('overview')}?batch={progress['id']}")
    return TemplateResponse(request, "connections/overview.html#test-all-progress", {"batch": progress})


@require_GET
@can("view_connection")
def test_all_progress(request: HtmxHttpRequest, batch_id: str):
    progress = batch_services.batch_progress(batch_id=batch_id) if batch_services.valid_batch_id(batch_id) else None
    if progress is None:
        raise Http404("This batch is unknown or expired.")
    if not wants_fragment(request):
        return redirect(f"{reverse('overview')}?batch={batch_id}")
    response = TemplateResponse(request, "connections/overview.html#test-all-progress", {"batch": progress})
    if progress["complete"]:
        trigger_client_event(response, "connections-tested")  # the overview rows refresh at once
    return response


@require_GET
@can("view_requestlog")
def request_log(request: HtmxHttpRequest):
    filters = selectors.LogFilters.from_query(request.GET)
    after = request.GET.get("after", "")
    before = request.GET.get("before") or None
    tail_after = int(after) if after.isdigit() else None
    page = selectors.request_log_page(filters=filters, before=before, tail_after=tail_after)
    if tail_after is not None:
        partial = "log-tail"
    elif before:
        partial = "log-rows"
    else:
        partial = "log-results"
    response = render(request, "connections/log.html", partial, page)
    if wants_fragment(request) and partial == "log-results":
        query = filters.querystring()
        push_url(response, f"{reverse('request_log')}{'?' + query if query else ''}")
    return response


@require_GET
@can("view_requestlog")
def request_detail(request: HtmxHttpRequest, pk: int):
    return TemplateResponse(request, "connections/log_detail.html", selectors.request_detail(pk=pk))


@require_GET
@can("view_requestlog")
def error_history(request: HtmxHttpRequest):
    context = selectors.error_history(range_key=request.GET.get("range", "7d"), vendor=request.GET.get("vendor", ""))
    return render(request, "connections/errors.html", "errors-body", context)


@require_GET
@can("view_requestlog")
def connection_errors(request: HtmxHttpRequest, name: str):
    context = selectors.error_history(connection=get_connection(name), range_key=request.GET.get("range", "7d"))
    return render(request, "connections/errors.html", "errors-body", context)


@require_GET
@can("view_connection")
def connection_headroom(request: HtmxHttpRequest, name: str):
    connection = get_connection(name)
    context = {"connection": connection, "headroom": selectors.connection_headroom(connection=connection)}
    return fragment_or_page(request, "connections/headroom.html#headroom", context, page=detail_url(connection),
                            anchor="headroom-card")
