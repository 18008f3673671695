"""Helpers for the provider tests: actors, the rows a send wrote, the connection test."""

from __future__ import annotations

from connections.models import RequestLog
from connections.outbound import client
from connections.services.audit import Actor

USER = Actor(label="tester", via="user")
WORKER = Actor(label="scheduler", via="schedule")


def rows(result) -> list[RequestLog]:
    return list(RequestLog.objects.filter(pk__in=result.log_ids).order_by("attempt", "id"))


def run_test(connection, actor=USER):
    """The provider's connection test through the client (what the testing service runs)."""
    return connection.provider_obj.run_test(
        lambda spec: client.send(connection, spec, actor=actor, operation="test"), connection.effective_options())
