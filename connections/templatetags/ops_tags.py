"""Template helpers of the operations pages, where the template engine is too slow per item."""

from functools import lru_cache

from django import template
from django.urls import NoReverseMatch, get_urlconf, reverse
from django.utils import timezone
from django.utils.html import format_html_join

from connections import charts
from connections.choices import Health, Outcome, RotationState
from connections.providers import PROVIDERS

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


# -- labels, links and charts of the operations pages (the selectors return data only) ------------

_HEALTH_LABELS = dict(Health.choices)  # get_FOO_display re-normalises the choices on every call
_ROTATION_LABELS = dict(RotationState.choices)
_OUTCOME_LABELS = dict(Outcome.choices)
_PLACEHOLDER = "name-placeholder"


@register.filter
def health_label(value: str) -> str:
    return _HEALTH_LABELS.get(value, value)


@register.filter
def rotation_label(value: str | None) -> str:
    return _ROTATION_LABELS.get(value, value or "")


@register.filter
def outcome_label(value: str) -> str:
    return _OUTCOME_LABELS.get(value, value)


@register.filter
def vendor_label(key: str) -> str:
    """A provider key as the pages name the vendor ("cleverbridge" -> "Cleverbridge")."""
    provider = PROVIDERS.get(key)
    return provider.label if provider else key


@register.filter
def option_label(provider, key: str) -> str:
    """An option as its form names it ("Test path"), not by its key ("test_path")."""
    field = next((f for f in provider.option_fields if f.name == key), None)
    return field.label if field else key


@lru_cache(maxsize=64)
def _url_template(urlconf, name: str) -> str:
    try:
        return reverse(name, urlconf=urlconf, args=[_PLACEHOLDER])
    except NoReverseMatch:  # a route another area has not added yet: no link
        return ""


@register.filter
def connection_url(name: str, route: str) -> str:
    """A per-connection URL ({{ c.name|connection_url:"connection_detail" }}), reversed once per
    route and URLconf (200 rows x 4 reverses per page is measurable); "" when the route is absent."""
    template = _url_template(get_urlconf(), route)
    return template.replace(_PLACEHOLDER, name) if template else ""


@register.filter
def sparkline(stats) -> str:
    """A LogStats' 24 h of requests and errors as an SVG sparkline."""
    return charts.sparkline(stats.totals, stats.errors)


@register.filter
def rate_label(rate: float | None) -> str:
    """An error rate as the pages say it: "12 %", "<1 %"."""
    if rate is None:
        return ""
    return "<1 %" if 0 < rate < 0.01 else f"{rate:.0%}".replace("%", " %")
