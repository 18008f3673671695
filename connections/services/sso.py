"""Single sign-on accounts: a user per identity-provider subject, made at the first sign-in, whose
role follows the provider's groups at every sign-in (dashboard/sso.py talks OpenID Connect).

- The role is the highest one any of the user's groups maps to (OIDC_ROLE_MAP); groups that map
  to nothing give no role, and such a sign-in is refused; an existing user then also loses
  the role they had, so the access ends now, not when someone notices.
- Users are matched by (issuer, subject), never by name: a provider account called "admin"
  cannot become the local break-glass "admin". A new user takes the provider's user name when it
  is free, else that name with a number.
- The IdP is the source of truth for SSO users' roles, so the last-admin guard of
  services/users.py does not hold them back (local admins remain for break-glass).
"""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import ExternalIdentity
from ..roles import ROLES, role_name
from .audit import Actor, audit
from .users import _apply_role

_NAME_CHARS = re.compile(r"[^\w.@+-]")


def role_for(groups, role_map: dict[str, str]) -> str | None:
    """The highest role the groups map to, or None."""
    if isinstance(groups, str):
        groups = [groups]
    mapped = {role_map[g] for g in (groups or []) if isinstance(g, str) and g in role_map}
    return next((role for role in reversed(list(ROLES)) if role in mapped), None)


def _free_username(hint: str) -> str:
    base = _NAME_CHARS.sub("", hint or "")[:140] or "sso-user"
    name, n = base, 1
    while User.objects.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _remove_roles(user: User) -> None:
    from django.contrib.auth.models import Group

    user.groups.remove(*Group.objects.filter(name__in=list(ROLES)))
    if user.is_superuser or user.is_staff:
        user.is_superuser = user.is_staff = False
        user.save(update_fields=["is_superuser", "is_staff"])


def sso_sign_in(*, issuer: str, subject: str, username: str, email: str, role: str | None,
                ip: str | None) -> User | None:
    """The user this identity signs in as, with `role`; None when the sign-in is refused (no role,
    or the account was deactivated in Switchboard)."""
    with transaction.atomic():
        identity = (ExternalIdentity.objects.select_for_update().select_related("user")
                    .filter(issuer=issuer, subject=subject).first())
        if identity is None:
            if role is None:
                audit(actor=Actor(label=username or subject, via="sso", ip=ip), action="user.sso_refused",
                      details={"user": username, "reason": "no group maps to a role"})
                return None
            user = User(username=_free_username(username), email=email or "")
            user.set_unusable_password()
            try:
                with transaction.atomic():
                    user.save()
                    identity = ExternalIdentity.objects.create(user=user, issuer=issuer, subject=subject)
            except IntegrityError:  # the same first sign-in in two tabs
                identity = ExternalIdentity.objects.select_related("user").get(issuer=issuer, subject=subject)
                user = identity.user
            else:
                _apply_role(user, role)
                audit(actor=Actor(user=user, label=user.username, via="sso", ip=ip), action="user.create",
                      details={"user": user.username, "role": role, "first_password": "sso"})
                identity.last_sign_in_at = timezone.now()
                identity.save(update_fields=["last_sign_in_at"])
                return user
        user = identity.user
        actor = Actor(user=user, label=user.username, via="sso", ip=ip)
        was = role_name(user)
        if role is None:
            if was:
                _remove_roles(user)
                audit(actor=actor, action="user.role", details={"user": user.username, "from": was, "to": "none",
                                                                "reason": "single sign-on groups map to no role"})
            audit(actor=actor, action="user.sso_refused", details={"user": user.username,
                                                                   "reason": "no group maps to a role"})
            return None
        if not user.is_active:
            audit(actor=actor, action="user.sso_refused", details={"user": user.username, "reason": "deactivated"})
            return None
        if was != role:
            _apply_role(user, role)
            audit(actor=actor, action="user.role", details={"user": user.username, "from": was or "none", "to": role,
                                                            "reason": "single sign-on groups"})
        if email and user.email != email:
            user.email = email
            user.save(update_fields=["email"])
        identity.last_sign_in_at = timezone.now()
        identity.save(update_fields=["last_sign_in_at"])
        return user
