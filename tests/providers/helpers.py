"""Helpers for the provider tests: actors, the rows a send wrote, the connection test."""

from __future__ import annotations

from connections.models import RequestLog
from connections.services.audit import Actor
from connections.services.testing import send_test

USER = Actor(label="tester", via="user")
WORKER = Actor(label="scheduler", via="schedule")


def rows(result) -> list[RequestLog]:
    return list(RequestLog.objects.filter(pk__in=result.log_ids).order_by("attempt", "id"))


def run_test(connection, actor=USER):
    """The provider's connection test steps through the client, as the testing service sends them
    (without recording health)."""
    return send_test(connection, connection.effective_options(), actor=actor)
