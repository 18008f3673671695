"""Audit events: who did what to which connection, from where. Never a secret."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from ..models import AuditEvent, Connection


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in user (web), the CLI, or the scheduler. Carried into audit and logs."""

    user: AbstractBaseUser | None = None
    label: str = "system"
    via: str = "system"  # user | cli | schedule | system
    ip: str | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        user = request.user if not isinstance(request.user, AnonymousUser) else None
        return cls(user=user, label=user.get_username() if user else "anonymous", via="user", ip=client_ip(request))

    @classmethod
    def cli(cls) -> Actor:
        import getpass

        try:
            who = getpass.getuser()
        except Exception:  # no login name in some containers
            who = "unknown"
        return cls(label=f"cli:{who}", via="cli")

    @classmethod
    def schedule(cls) -> Actor:
        return cls(label="scheduler", via="schedule")


SYSTEM = Actor()


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is spoofable unless a trusted proxy sets it.
    return request.META.get("REMOTE_ADDR") or None


def audit(*, actor: Actor, action: str, connection: Connection | None = None,
          connection_name: str = "", details: dict | None = None) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor.user,
        actor_label=actor.label,
        action=action,
        connection=connection,
        connection_name=connection.name if connection else connection_name,
        ip=actor.ip,
        details=details or {},
    )
