""""Connect" for OAuth 2.0 connections: start the authorization-code flow, and its callback."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dashboard.reauth import recent_password
from dashboard.security import CSP

from ..providers.schema import error_messages
from ..services.audit import Actor
from ..services.oauth2_connect import ConnectError, connect_finish, connect_start
from .common import can, get_connection


def allow_connect_redirect(response, authorize_url: str) -> None:
    """The Connect form posts here and is redirected to the consent page: CSP's form-action governs
    that redirect too, so the page with the form names the authorization server's origin."""
    parts = urlsplit(authorize_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    response.headers["Content-Security-Policy"] = CSP.replace("form-action 'self'", f"form-action 'self' {origin}")


def callback_url(request) -> str:
    """The redirect URI registered at the authorization server: SITE_URL's when set (behind a proxy
    the request's own host may differ), else the address this request came to."""
    path = reverse("oauth2_callback")
    return settings.SITE_URL + path if settings.SITE_URL else request.build_absolute_uri(path)


@require_POST
@can("manage_secrets")
@recent_password
def connect(request, name: str):
    connection = get_connection(name)
    try:
        url = connect_start(connection=connection, session=request.session, redirect_uri=callback_url(request),
                            actor=Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, "Connect is not possible yet: " + "; ".join(error_messages(exc).values()) + ".")
        return redirect("connection_detail", name=connection.name)
    return redirect(url)


@require_GET
@can("manage_secrets")
def callback(request):
    params = {k: request.GET.get(k, "") for k in ("state", "code", "error", "error_description")}
    try:
        outcome = connect_finish(session=request.session, params=params, actor=Actor.from_request(request))
    except ConnectError as exc:
        messages.error(request, exc.message)
        if exc.connection is not None:
            return redirect("connection_detail", name=exc.connection.name)
        return redirect("connection_list")
    (messages.success if outcome.ok and outcome.verified is not False else messages.warning)(request, outcome.message)
    return redirect("connection_detail", name=outcome.connection)
