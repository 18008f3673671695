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
    """Declare and check the permission a view needs (never group names): 403 without it.

    The declaration (`view.required_permission`) is also read by PermissionMiddleware, which
    checks it before any method check and refuses views that declare nothing (default deny).
    """
    check = permission_required(f"connections.{perm}", raise_exception=True)

    def decorate(view):
        wrapped = check(view)
        wrapped.required_permission = f"connections.{perm}"
        return wrapped

    return decorate


def get_connection(name: str) -> Connection:
    return get_object_or_404(Connection, name=name)
