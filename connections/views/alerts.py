"""Alerts: history, channels (admins), default and per-connection rules, maintenance windows."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from dashboard.reauth import recent_password

from .. import alerts, selectors
from ..forms import add_schema_errors, errors_text
from ..models import AlertChannel, AlertCondition, AlertDelivery, AlertEvent, AlertRule, MaintenanceWindow
from ..providers.schema import SchemaError
from ..services.audit import Actor
from .common import can, get_connection, render

EVENTS_SHOWN = 100


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=AlertChannel.KINDS)
    target = forms.CharField(max_length=2000, label="Addresses or webhook URL",
                             help_text="E-mail: addresses separated by commas. Webhook: the full URL "
                                       "(Slack-compatible JSON with a text field). The URL is stored encrypted.",
                             widget=forms.TextInput(attrs={"autocomplete": "off"}))


class MaintenanceForm(forms.Form):
    hours = forms.FloatField(min_value=0.1, max_value=336, initial=1, label="Duration (hours)")
    reason = forms.CharField(max_length=300, required=False)


@require_GET
@can("view_alertevent")
def alert_list(request):
    events = list(AlertEvent.objects.select_related("connection").prefetch_related("deliveries__channel")
                  .order_by("-at", "-id")[:EVENTS_SHOWN])
    context = {
        "firing": selectors.firing_alerts(),
        "events": events,
        "channels": AlertChannel.objects.order_by("name"),
        "recent_tests": AlertDelivery.objects.filter(event=None).select_related("channel")[:10],
        "rules": selectors.alert_rule_rows(),
        "maintenance": MaintenanceWindow.objects.filter(ends_at__gt=timezone.now()).select_related("connection"),
        "channel_form": ChannelForm(),
    }
    return render(request, "connections/alerts.html", "alert-events", context)


@require_POST
@can("manage_alerts")
@recent_password
def alert_channel_create(request):
    form = ChannelForm(request.POST)
    if form.is_valid():
        try:
            channel = alerts.channel_create(actor=Actor.from_request(request), **form.cleaned_data)
        except SchemaError as exc:
            add_schema_errors(form, exc)
        else:
            messages.success(request, f"Channel {channel.name} added. Send it a test alert to check it works.")
            return redirect("alert_list")
    messages.error(request, "The channel was not added: " + errors_text(form))
    return redirect("alert_list")


@require_POST
@can("manage_alerts")
def alert_channel_test(request, pk: int):
    channel = get_object_or_404(AlertChannel, pk=pk)
    alerts.channel_test(channel=channel, actor=Actor.from_request(request))
    messages.info(request, f"Test alert queued for {channel.name}; its delivery shows below within seconds.")
    return redirect("alert_list")


@require_POST
@can("manage_alerts")
def alert_channel_delete(request, pk: int):
    channel = get_object_or_404(AlertChannel, pk=pk)
    alerts.channel_delete(channel=channel, actor=Actor.from_request(request))
    messages.success(request, f"Channel {channel.name} deleted.")
    return redirect("alert_list")


def _save_rules(request, connection=None) -> None:
    actor = Actor.from_request(request)
    for value, label in AlertCondition.choices:
        if connection is not None and request.POST.get(f"{value}-mode", "default") == "default":
            AlertRule.objects.filter(connection=connection, condition=value).delete()
            continue
        raw = request.POST.get(f"{value}-threshold", "").strip()
        try:
            threshold = float(raw) if raw else None
            cooldown = int(request.POST.get(f"{value}-cooldown") or 30)
            alerts.rule_set(connection=connection, condition=value, enabled=bool(request.POST.get(f"{value}-enabled")),
                            threshold=threshold, cooldown_minutes=max(0, cooldown), actor=actor)
        except (ValueError, SchemaError) as exc:
            messages.error(request, f"{label}: not saved ({exc}).")


@require_POST
@can("manage_alerts")
def alert_rules_update(request):
    _save_rules(request)
    messages.success(request, "Default alert rules saved.")
    return redirect("alert_list")


@require_POST
@can("manage_alerts")
def connection_alert_rules(request, name: str):
    connection = get_connection(name)
    _save_rules(request, connection)
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
    except SchemaError as exc:
        messages.error(request, f"Maintenance window not set: {exc}")
    else:
        messages.success(request, f"Alerts for {connection.name} are silenced until {window.ends_at:%Y-%m-%d %H:%M} UTC.")
    return redirect("connection_detail", name=connection.name)


@require_POST
@can("manage_alerts")
def maintenance_end(request, name: str, pk: int):
    connection = get_connection(name)
    window = get_object_or_404(MaintenanceWindow, pk=pk, connection=connection)
    alerts.maintenance_end(window=window, actor=Actor.from_request(request))
    messages.success(request, f"Maintenance window of {connection.name} ended; alerts are on again.")
    return redirect("connection_detail", name=connection.name)

