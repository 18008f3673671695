"""Filters that spell times the same way on every page (and as app.js updates them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

from connections.formatting import duration_text

register = template.Library()

JUST_NOW = timedelta(minutes=1)


@register.filter
def ago(value: datetime | None) -> str:
    """"just now" under a minute (never "0 minutes ago"), else "3 minutes ago": the text before
    app.js takes over a `<time class="ago">`, and all there is without JavaScript."""
    if not value:
        return ""
    if timezone.now() - value < JUST_NOW:
        return "just now"
    return f"{timesince(value)} ago"


@register.filter
def until(value: datetime | None) -> str:
    """How long until a moment: "under a minute" (never "0 minutes"), else "3 minutes"; app.js's
    countdown takes over from this text."""
    if not value:
        return ""
    if value - timezone.now() < JUST_NOW:
        return "under a minute"
    return timeuntil(value)


@register.filter
def span(value: timedelta | None) -> str:
    """A length of time: "15 min", "1 h 30 min"."""
    if value is None:
        return ""
    return duration_text(value.total_seconds() * 1000)
