"""Factories for tests (factory_boy): users in a role, connections, request log rows.

- `UserFactory(role="operator")`, or `user("operator")`: an account in a role's group.
- `ConnectionFactory(...)`: a bare connection row, no credential (pages read it as it is).
- `connection(provider, sandbox=vendors)`: a connection with an active credential, made through
  the service (connection_create) as the product makes it; with `sandbox`, pointed at the twin.
- `RequestLogFactory.build(connection=c, ago=timedelta(hours=3), status_code=503, ...)`: a request
  log row (unsaved with .build(), for bulk_create; saved with .create()).
"""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone
from factory.django import DjangoModelFactory

from connections.models import Connection, RequestLog
from connections.services.audit import Actor
from connections.services.vault import connection_create

PASSWORD = "correct-horse-battery-staple"


class UserFactory(DjangoModelFactory):
    """UserFactory(role="operator"): an account in that role's group (default viewer)."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(obj, create, extracted, **kwargs):  # noqa: N805 (factory_boy passes the object first)
        if create:
            obj.groups.add(Group.objects.get(name=extracted or "viewer"))


def user(role: str, username: str | None = None) -> User:
    """An account in `role` (viewer, operator, admin), password PASSWORD."""
    return UserFactory(role=role, username=username or f"{role}{UserFactory._meta.next_sequence()}")


class ConnectionFactory(DjangoModelFactory):
    """A connection row without a credential."""

    class Meta:
        model = Connection

    name = factory.Sequence(lambda n: f"conn-{n}")
    provider = "clever"
    base_url = "https://api.example.com"


class RequestLogFactory(DjangoModelFactory):
    """One outbound attempt, `ago` before now (default: a minute), 200 OK unless told otherwise."""

    class Meta:
        model = RequestLog

    class Params:
        ago = timedelta(minutes=1)

    connection = factory.SubFactory(ConnectionFactory)
    provider = factory.SelfAttribute("connection.provider")
    operation = "call"
    method = "GET"
    path = "/v3.0/x"
    started_at = factory.LazyAttribute(lambda o: timezone.now() - o.ago)
    duration_ms = 42
    status_code = 200
    outcome = "ok"


def connection(provider: str = "cleverbridge", *, name: str | None = None, base_url: str | None = None,
               secret: dict | None = None, sandbox=None, options: dict | None = None, **kwargs):
    """A connection with an active credential, made by the service; with `sandbox`, pointed at the
    twin with its demo secret."""
    if sandbox is not None:
        from connections.sandbox import DEMO_CREDENTIALS

        base_url = base_url or sandbox.base_url(provider)
        secret = secret or dict(DEMO_CREDENTIALS[provider])
    return connection_create(
        name=name or f"{provider}-{ConnectionFactory._meta.next_sequence()}",
        provider=provider,
        base_url=base_url or "https://api.example.com",
        secret=secret or {"username": "u", "password": "p"},
        options=options,
        actor=Actor(label="factory"),
        **kwargs,
    )
