"""Helpers every view module shares."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django_htmx.middleware import HtmxDetails

from ..models import Connection


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def can(perm: str):
    """Permission check (never group names); 403 for a signed-in user without it."""
    return permission_required(f"connections.{perm}", raise_exception=True)


def get_connection(name: str) -> Connection:
    return get_object_or_404(Connection, name=name)
