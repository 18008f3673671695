"""Helpers every view module shares."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django_htmx.middleware import HtmxDetails

from ..models import Connection


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def can(perm: str):
    """Declare and check the permission a view needs (never group names): 403 without it.

    The declaration (`view.required_permission`) is also read by PermissionMiddleware, which
    checks it before any method check and refuses views that declare nothing (default deny).
    """
    check = permission_required(f"connections.{perm}", raise_exception=True)

    def decorate(view):
        wrapped = check(view)
        wrapped.required_permission = f"connections.{perm}"
        return wrapped

    return decorate


def get_connection(name: str, *, archived: bool = False) -> Connection:
    """The live connection of that name (404 otherwise); archived=True: an archived one too
    (pages that only show history)."""
    return get_object_or_404(Connection.with_archived if archived else Connection.objects, name=name)


def wants_fragment(request: HtmxHttpRequest) -> bool:
    """An htmx swap wants the partial; a normal load, a new tab or a history restore (Back, with
    htmx's history cache off) wants the whole page with its layout."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render(request: HtmxHttpRequest, page: str, partial: str | None, context: dict, *,
           status: int = 200) -> TemplateResponse:
    """`page#partial` for an htmx swap, the whole `page` otherwise (same URL, so Vary: HX-Request:
    a browser cache must not hand the fragment back for a page load)."""
    template = f"{page}#{partial}" if partial and wants_fragment(request) else page
    response = TemplateResponse(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def fragment_or_page(request: HtmxHttpRequest, template: str, context: dict, *, page: str, anchor: str = "",
                     status: int = 200):
    """A URL that only serves a fragment (a panel's refresh): the fragment for htmx; for anyone
    else (a link opened in a new tab, a pasted URL) a redirect to the page that holds the panel."""
    if not wants_fragment(request):
        return redirect(page + (f"#{anchor}" if anchor else ""))
    response = TemplateResponse(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def detail_url(connection: Connection) -> str:
    return reverse("connection_detail", args=[connection.name])
