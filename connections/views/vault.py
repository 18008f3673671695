"""Connections and secrets: list, detail, create, edit, replace secret, archive; the audit log."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.reauth import recent_password

from .. import selectors
from ..forms import AuditFilterForm, ConnectionForm, SecretForm, alert_rule_formset
from ..outbound import guard
from ..providers import PROVIDERS
from ..rotation import staged_replace
from ..selectors.vault import retired_for_host_change
from ..services import archive as archive_services
from ..services import vault as vault_services
from ..services.audit import Actor
from .common import can, get_connection, render
from .rotation import rotation_context

DETAIL_PARTS = {"credential-card", "credential-versions"}


@require_GET
@can("view_connection")
def connection_list(request):
    return TemplateResponse(request, "connections/list.html",
                            {"connections": selectors.connection_list(), "providers": PROVIDERS})


@require_GET
@can("view_connection")
def connection_detail(request, name: str):
    connection = get_connection(name, archived=True)
    if connection.archived_at is not None:  # read-only: what it was, and its history
        context = selectors.archived_detail(connection=connection)
        context["rot"] = {"history": selectors.rotation_panel(connection=connection).history}
        return TemplateResponse(request, "connections/archived.html", context)
    # htmx refreshes these after a rotation or replacement changes the credential.
    part = request.GET.get("part")
    context = selectors.connection_detail(connection=connection)
    if part not in DETAIL_PARTS:  # the whole page: its Rotate panel and rotation history
        context["rot"] = rotation_context(connection, attempt_id=request.GET.get("rotation", ""))
        context["rules_formset"] = alert_rule_formset(context["alert_rules"], per_connection=True,
                                                      editable=request.user.has_perm("connections.manage_alerts"))
    response = render(request, "connections/detail.html", part if part in DETAIL_PARTS else None, context)
    if context["can_connect"]:
        from .oauth2 import allow_connect_redirect

        allow_connect_redirect(response, context["options"]["authorize_url"])
    return response


@require_http_methods(["GET", "POST"])
@can("manage_secrets")
@recent_password
@sensitive_post_parameters()
def connection_create(request):
    provider = request.POST.get("provider") or request.GET.get("provider")
    form = ConnectionForm(request.POST or None, provider=provider, initial={"provider": provider})
    switching = request.method == "POST" and request.POST.get("switch_provider")
    if request.method == "POST" and not switching and form.is_valid():
        try:
            connection = vault_services.connection_create(
                name=form.cleaned_data["name"], provider=form.cleaned_data["provider"],
                base_url=form.cleaned_data["base_url"] or None, options=form.options(), secret=form.secret(),
                test_interval=form.cleaned_data["test_interval"],
                refresh_interval=form.cleaned_data["refresh_interval"],
                enabled=form.cleaned_data["enabled"], actor=Actor.from_request(request),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Connection {connection.name} created; its secret is stored encrypted.")
            return redirect("connection_detail", name=connection.name)
    if switching:
        form.errors.clear()
    return render(request, "connections/form.html", "connection-form",
                  {"form": form, "creating": True, "provider": PROVIDERS[form.provider_key]})


@require_http_methods(["GET", "POST"])
@can("manage_secrets")
@recent_password
def connection_edit(request, name: str):
    connection = get_connection(name)
    initial = {"base_url": connection.base_url, "test_interval": connection.test_interval,
               "refresh_interval": connection.refresh_interval, "enabled": connection.enabled}
    initial.update({f"option_{k}": v for k, v in connection.effective_options().items()})
    form = ConnectionForm(request.POST or None, provider=connection.provider, editing=True, initial=initial)
    if request.method == "POST" and form.is_valid():
        before = guard.origin(connection.base_url)
        try:
            vault_services.connection_update(
                connection=connection, actor=Actor.from_request(request),
                base_url=form.cleaned_data["base_url"] or connection.provider_obj.default_base_url,
                options=form.options(), test_interval=form.cleaned_data["test_interval"],
                refresh_interval=form.cleaned_data["refresh_interval"], enabled=form.cleaned_data["enabled"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            retired = retired_for_host_change(connection)
            if before != guard.origin(connection.base_url) and retired is not None:
                messages.warning(request, f"Settings of {connection.name} saved. The host changed, so its secret "
                                          f"(v{retired.version}, fingerprint {retired.fingerprint}) was retired and "
                                          "will not be sent to the new host. Enter the secret again to use it.")
            else:
                messages.success(request, f"Settings of {connection.name} saved.")
            return redirect("connection_detail", name=connection.name)
    return TemplateResponse(request, "connections/form.html", {"form": form, "connection": connection,
                                                                "provider": connection.provider_obj})


@require_http_methods(["GET", "POST"])
@can("manage_secrets")
@recent_password
@sensitive_post_parameters()
def connection_secret(request, name: str):
    connection = get_connection(name)
    form = SecretForm(request.POST or None, provider=connection.provider)
    if request.method == "POST" and form.is_valid():
        actor = Actor.from_request(request)
        try:
            if request.POST.get("unverified"):
                # The admin's explicit choice, e.g. while the vendor is down: stored as is.
                credential = vault_services.secret_replace(connection=connection, secret=form.secret(), actor=actor)
                outcome = None
            else:
                outcome = staged_replace(connection=connection, secret=form.secret(), actor=actor)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if outcome is None:
                messages.warning(request, f"New secret stored without verification as version {credential.version} "
                                          f"(fingerprint {credential.fingerprint}); the previous one is retired.")
                return redirect("connection_detail", name=connection.name)
            if outcome.ok:
                messages.success(request, outcome.message)
                return redirect("connection_detail", name=connection.name)
            form.add_error(None, outcome.message)
    return TemplateResponse(request, "connections/secret.html", {
        "form": form, "connection": connection, "provider": connection.provider_obj,
        "test_statement": connection.provider_obj.describe_test(connection.effective_options())})


@require_POST
@can("manage_secrets")
def connection_archive(request, name: str):
    connection = get_connection(name)
    try:
        archive_services.connection_archive(connection=connection, actor=Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("connection_detail", name=connection.name)
    messages.success(request, f"Connection {name} is archived: it is no longer tested or used and its secrets are "
                              "retired; its request log, rotation history and audit trail stay below.")
    return redirect("connection_detail", name=connection.name)


@require_GET
@can("view_auditevent")
def audit_log(request):
    form = AuditFilterForm(request.GET)
    page = selectors.audit_page(**form.selection())
    page.update(filter_form=form, filter_query=request.GET.copy())
    page["filter_query"].pop("before", None)
    return render(request, "connections/audit.html", "audit-rows", page)
