"""Operations pages: overview (+ Test all), request log, error details, error history, headroom.

htmx requests get the page's partial ("page.html#partial"); the same URL without htmx renders
the whole page, so every view works without JavaScript and can be shared as a link.
"""

from __future__ import annotations

from dataclasses import fields
from urllib.parse import urlencode

from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url, trigger_client_event

from .. import charts, selectors
from ..advice import advise, support_deadline
from ..forms import LogFilterForm
from ..providers import PROVIDERS
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
    form = LogFilterForm(request.GET)
    form.is_valid()  # a bad value is named on the page; the valid filters still apply
    filters = form.filters()
    after = request.GET.get("after", "")
    before = request.GET.get("before") or None
    tail_after = after if selectors.decode_tail(after) else None
    page = selectors.request_log_page(filters=filters, before=before, tail_after=tail_after)
    if tail_after is not None:
        partial = "log-tail"
    elif before:
        partial = "log-rows"
    else:
        partial = "log-results"
    params = filters.as_params()
    context = {
        **{f.name: getattr(page, f.name) for f in fields(page)},
        "form": form, "filters": filters, "params": params,
        "older_query": urlencode({**params, "before": page.next_before}) if page.next_before else "",
        "tail_query": urlencode({**params, "after": page.tail_cursor}) if page.tail_cursor is not None else "",
        "detail_prefix": reverse("request_detail", args=[0])[:-2],  # "/log/": rows add "<id>/"
        # The filter: live connections, then archived ones (their history stays searchable).
        "connection_names": page.connection_names + [(name, f"{name} (archived)") for name in page.archived_names],
    }
    response = render(request, "connections/log.html", partial, context)
    if wants_fragment(request) and partial == "log-results":
        push_url(response, f"{reverse('request_log')}{'?' + urlencode(params) if params else ''}")
    return response


@require_GET
@can("view_requestlog")
def request_detail(request: HtmxHttpRequest, pk: int):
    context = selectors.request_detail(pk=pk)
    log, provider = context["log"], context["provider"]
    support_until = support_deadline(log, provider)
    context.update(advice=advise(log, provider), support_until=support_until,
                   support_expired=support_until is not None and support_until <= timezone.now())
    return TemplateResponse(request, "connections/log_detail.html", context)


def _error_history_page(history: selectors.ErrorHistory) -> dict:
    """The error history's chart and links: each group links to exactly its rows in the log."""
    since = timezone.localtime(history.since).strftime("%Y-%m-%dT%H:%M")
    name = history.connection.name if history.connection else ""
    for g in history.groups:
        g["log_query"] = urlencode({k: v for k, v in {
            "connection": name,
            "vendor": "" if name else g["provider"],
            "outcome": g["outcome"],
            "status": g["status_code"] if g["status_code"] is not None else "none",
            "error_code": g["error_code"] or selectors.NO_ERROR_CODE,
            "since": since,
        }.items() if v})
    return {**{f.name: getattr(history, f.name) for f in fields(history)}, "total": history.total,
            "vendors": PROVIDERS, "chart": charts.error_chart(history.buckets, history.series, bucket_label=history.unit)}


@require_GET
@can("view_requestlog")
def error_history(request: HtmxHttpRequest):
    history = selectors.error_history(range_key=request.GET.get("range", "7d"), vendor=request.GET.get("vendor", ""))
    return render(request, "connections/errors.html", "errors-body", _error_history_page(history))


@require_GET
@can("view_requestlog")
def connection_errors(request: HtmxHttpRequest, name: str):
    history = selectors.error_history(connection=get_connection(name, archived=True),
                                      range_key=request.GET.get("range", "7d"))
    return render(request, "connections/errors.html", "errors-body", _error_history_page(history))


@require_GET
@can("view_connection")
def connection_headroom(request: HtmxHttpRequest, name: str):
    connection = get_connection(name)
    context = {"connection": connection, "headroom": selectors.connection_headroom(connection=connection)}
    return fragment_or_page(request, "connections/headroom.html#headroom", context, page=detail_url(connection),
                            anchor="headroom-card")
