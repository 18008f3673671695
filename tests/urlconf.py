"""Every URL of the project, enumerated from the URLconf, so a new view cannot be forgotten."""

from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver, get_resolver

# Framework-provided routes that are not Switchboard pages.
SKIP_PREFIXES = ("admin/", "static/")


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name


def all_routes() -> list[tuple[str, str]]:
    return [(route, name) for route, name in _walk(get_resolver().url_patterns)
            if not route.startswith(SKIP_PREFIXES)]


def fill(route: str, values: dict[str, str]) -> str:
    """Turn 'connections/<slug:name>/' into '/connections/demo/' with sample values by parameter name."""
    def sub(match):
        name = match.group(2)
        if name not in values:
            raise KeyError(f"no sample value for <{match.group(0)}> in {route}; add one to the test")
        return str(values[name])

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", sub, route)
