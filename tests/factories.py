"""Factories for tests: users in a role, connections pointing at the sandbox."""

from __future__ import annotations

import itertools

from django.contrib.auth.models import Group, User

from connections.services.audit import Actor
from connections.services.vault import connection_create

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def user(role: str, username: str | None = None) -> User:
    u = User.objects.create_user(username=username or f"{role}{next(_seq)}", password=PASSWORD)
    u.groups.add(Group.objects.get(name=role))
    return u


def connection(provider: str = "cleverbridge", *, name: str | None = None, base_url: str | None = None,
               secret: dict | None = None, sandbox=None, options: dict | None = None, **kwargs):
    """A connection with an active credential; with `sandbox`, pointed at the twin with its demo secret."""
    if sandbox is not None:
        from connections.sandbox import DEMO_CREDENTIALS

        base_url = base_url or sandbox.base_url(provider)
        secret = secret or dict(DEMO_CREDENTIALS[provider])
    return connection_create(
        name=name or f"{provider}-{next(_seq)}",
        provider=provider,
        base_url=base_url or "https://api.example.com",
        secret=secret or {"username": "u", "password": "p"},
        options=options,
        actor=Actor(label="factory"),
        **kwargs,
    )
