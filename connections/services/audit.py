"""Audit events: who did what to which connection, from where. Never a secret."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.conf import settings
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
    application: str = ""  # the application a proxied call is made for (connections/proxy/)

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
    """The client's address as the outermost of TRUSTED_PROXY_COUNT proxies saw it.

    0 (the default): REMOTE_ADDR, since X-Forwarded-For is anyone's to write. N: each proxy
    appends the address it received from, so the client is the N-th entry from the right;
    entries further left were written by the client and are never believed. Also django-axes's
    AXES_CLIENT_IP_CALLABLE, so sign-in lockouts and the audit log see the same address.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if not hops:
        return remote
    # Fewer entries than proxies: the leftmost was still written by a trusted proxy.
    candidate = hops[-count] if len(hops) >= count else hops[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


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
