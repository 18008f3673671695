"""Template helpers of the operations pages, where the template engine is too slow per item."""

from django import template
from django.utils.html import format_html_join

register = template.Library()


@register.simple_tag
def select_options(values, selected=""):
    """<option>s for a list of values, or of (value, label) pairs, in one call (200 connections
    through {% for %} cost several milliseconds per page)."""
    pairs = [(v, v) if isinstance(v, str) else (v[0], v[1]) for v in values]
    return format_html_join("", '<option value="{}"{}>{}</option>',
                            ((value, " selected" if value == selected else "", label) for value, label in pairs))
