"""Applications of the egress proxy: everyone with a role sees them (never a key); admins create,
scope, rotate and revoke their keys. A key is shown once, on the page that answers its creation
or rotation, and never again (only its prefix)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from ..forms import ApplicationKeyForm
from ..models import Connection
from ..selectors.appkeys import app_row, app_rows
from ..services import appkeys as services
from ..services.audit import Actor
from .common import can


def _form(data=None) -> ApplicationKeyForm:
    names = list(Connection.objects.order_by("name").values_list("name", flat=True))
    return ApplicationKeyForm(data, connection_names=names, methods=services.METHODS)


def proxy_base(request) -> str:
    """Where applications send their calls: SITE_URL's /proxy/, else this request's own origin's."""
    return f"{settings.SITE_URL}/proxy/" if settings.SITE_URL else request.build_absolute_uri("/proxy/")


def _page(request, form: ApplicationKeyForm, *, status: int = 200) -> TemplateResponse:
    names = [name for name, _ in form.fields["connections"].choices]
    return TemplateResponse(request, "connections/appkeys.html",
                            {"apps": app_rows(), "form": form, "methods": services.METHODS,
                             "connection_names": names, "proxy_base": proxy_base(request),
                             "example_connection": names[0] if names else "CONNECTION"},
                            status=status)


def _key_page(request, issued: services.IssuedKey, *, created: bool) -> TemplateResponse:
    app = app_row(name=issued.application.name)
    response = TemplateResponse(request, "connections/appkey_shown.html",
                                {"app": app, "key": issued.key, "created": created, "proxy_base": proxy_base(request),
                                 "example_connection": (app.connections or ["CONNECTION"])[0]})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@can("view_applicationkey")
def application_list(request):
    return _page(request, _form())


@never_cache
@require_POST
@can("change_applicationkey")
def application_create(request):
    form = _form(request.POST)
    if form.is_valid():
        try:
            issued = services.create_key(name=form.cleaned_data["name"], connections=form.cleaned_data["connections"],
                                         methods=form.cleaned_data["methods"], actor=Actor.from_request(request))
        except ValidationError as exc:
            for field, errors in exc.error_dict.items() if hasattr(exc, "error_dict") else [(None, exc.error_list)]:
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            return _key_page(request, issued, created=True)
    return _page(request, form, status=400)


@never_cache
@require_POST
@can("change_applicationkey")
def application_rotate(request, name: str):
    try:
        issued = services.rotate_key(name=name, actor=Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, f"{name}: nothing changed. {' '.join(exc.messages)}")
        return redirect("application_list")
    return _key_page(request, issued, created=False)


@require_POST
@can("change_applicationkey")
def application_scope(request, name: str):
    try:
        services.set_scope(name=name, connections=request.POST.getlist("connections"),
                           methods=request.POST.getlist("methods"), actor=Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, f"{name}: nothing changed. {' '.join(exc.messages)}")
    else:
        messages.success(request, f"{name}: scope saved.")
    return redirect("application_list")


@require_POST
@can("change_applicationkey")
def application_revoke(request, name: str):
    try:
        services.revoke_key(name=name, actor=Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, f"{name}: nothing changed. {' '.join(exc.messages)}")
    else:
        messages.success(request, f"{name}: key revoked; calls with it now get 401.")
    return redirect("application_list")
