"""Template helpers of the operations pages, where the template engine is too slow per item."""

from django import template
from django.utils import timezone
from django.utils.html import format_html_join

register = template.Library()


@register.simple_tag
def select_options(values, selected=""):
    """<option>s for a list of values, or of (value, label) pairs, in one call (200 connections
    through {% for %} cost several milliseconds per page)."""
    pairs = [(v, v) if isinstance(v, str) else (v[0], v[1]) for v in values]
    return format_html_join("", '<option value="{}"{}>{}</option>',
                            ((value, " selected" if value == selected else "", label) for value, label in pairs))


@register.filter
def thousands(value) -> str:
    """1199 -> "1,199": every count on the pages reads the same way, whatever the locale."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "" if value is None else str(value)


@register.filter
def lasted(since, now=None) -> str:
    """How long since `since`, short: "40 s", "12 min", "3 h 5 min", "2 days" ("failing for 12 min")."""
    if since is None:
        return ""
    seconds = max(int(((now or timezone.now()) - since).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days = hours // 24
    return "1 day" if days == 1 else f"{days} days"
