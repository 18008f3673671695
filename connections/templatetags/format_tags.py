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


@register.filter
def moment(value) -> datetime | None:
    """A moment kept as ISO text (a credential's meta, e.g. session_expires_at) as a datetime, so
    pages spell it like every other time instead of "2026-11-29T13:37:05.926256+00:00"."""
    if isinstance(value, datetime) or not value:
        return value or None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@register.filter
def relative(value: datetime | None) -> str:
    """"in 59 minutes" for a moment ahead, "3 minutes ago" (or "just now") for one past."""
    if not value:
        return ""
    return f"in {until(value)}" if value > timezone.now() else ago(value)
