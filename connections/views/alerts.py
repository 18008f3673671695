"""Alerts: history, channels (admins), default and per-connection rules, maintenance windows."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from dashboard.reauth import recent_password

from .. import alerts, selectors
from ..forms import ChannelForm, MaintenanceForm, alert_rule_formset, errors_text
from ..providers.schema import error_text
from ..services.audit import Actor
from .common import can, get_connection, render

MANAGE = "connections.manage_alerts"


@require_GET
@can("view_alertevent")
def alert_list(request):
    return _alerts_page(request, ChannelForm())


def _alerts_page(request, channel_form: ChannelForm, *, status: int = 200):
    context = selectors.alerts_page()
    context.update(channel_form=channel_form,
                   rules_formset=alert_rule_formset(context["rules"], editable=request.user.has_perm(MANAGE)))
    return render(request, "connections/alerts.html", "alert-events", context, status=status)


@require_POST
@can("manage_alerts")
@recent_password
def alert_channel_create(request):
    form = ChannelForm(request.POST)
    if form.is_valid():
        try:
            channel = alerts.channel_create(actor=Actor.from_request(request), **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Channel {channel.name} added. Send it a test alert to check it works.")
            return redirect("alert_list")
    # The page again with the form as typed and each error on its field: a redirect lost the typed
    # webhook URL and named the field by its key ("target: ...").
    messages.error(request, "The channel was not added: the form under Channels says why.")
    return _alerts_page(request, form, status=400)


@require_POST
@can("manage_alerts")
def alert_channel_test(request, pk: int):
    channel = selectors.alert_channel(pk=pk)
    alerts.channel_test(channel=channel, actor=Actor.from_request(request))
    messages.info(request, f"Test alert queued for {channel.name}; its delivery shows below within seconds.")
    return redirect("alert_list")


@require_POST
@can("manage_alerts")
def alert_channel_delete(request, pk: int):
    channel = selectors.alert_channel(pk=pk)
    alerts.channel_delete(channel=channel, actor=Actor.from_request(request))
    messages.success(request, f"Channel {channel.name} deleted.")
    return redirect("alert_list")


def _save_rules(request, connection=None) -> bool:
    """All the rules of the form, or none: a bad value is named and nothing changes."""
    formset = alert_rule_formset(selectors.alert_rule_rows(connection), data=request.POST,
                                 per_connection=connection is not None)
    if not formset.is_valid():
        problems = [f"{form.row.label if form.row else 'rule'}: {errors_text(form)}" for form in formset if form.errors]
        messages.error(request, "Alert rules not saved: " + "; ".join(problems or formset.non_form_errors()))
        return False
    try:
        alerts.rules_save(connection=connection, rules=[form.rule() for form in formset], actor=Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, f"Alert rules not saved: {error_text(exc)}")
        return False
    return True


@require_POST
@can("manage_alerts")
def alert_rules_update(request):
    if _save_rules(request):
        messages.success(request, "Default alert rules saved.")
    return redirect("alert_list")


@require_POST
@can("manage_alerts")
def connection_alert_rules(request, name: str):
    connection = get_connection(name)
    if _save_rules(request, connection):
        messages.success(request, f"Alert rules of {connection.name} saved.")
    return redirect("connection_detail", name=connection.name)


@require_POST
@can("manage_alerts")
def maintenance_create(request, name: str):
    connection = get_connection(name)
    form = MaintenanceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Maintenance window not set: " + errors_text(form))
        return redirect("connection_detail", name=connection.name)
    now = timezone.now()
    try:
        window = alerts.maintenance_create(connection=connection, starts_at=now,
                                           ends_at=now + dt.timedelta(hours=form.cleaned_data["hours"]),
                                           reason=form.cleaned_data["reason"], actor=Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, f"Maintenance window not set: {error_text(exc)}")
    else:
        messages.success(request, f"Alerts for {connection.name} are silenced until {window.ends_at:%Y-%m-%d %H:%M} UTC.")
    return redirect("connection_detail", name=connection.name)


@require_POST
@can("manage_alerts")
def maintenance_end(request, name: str, pk: int):
    connection = get_connection(name)
    window = selectors.maintenance_window(connection=connection, pk=pk)
    alerts.maintenance_end(window=window, actor=Actor.from_request(request))
    messages.success(request, f"Maintenance window of {connection.name} ended; alerts are on again.")
    return redirect("connection_detail", name=connection.name)

