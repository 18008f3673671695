"""Accounts: add a user, change a role, deactivate or reactivate, reset or set a password.

Roles are the groups of connections/roles.py; a user holds exactly one. At least one active
admin always remains: every change that could remove the last one takes a lock on the admin
group first, so two admins demoting each other at once cannot both succeed. Passwords and
set-password tokens never reach the audit log (its details name the user and the change).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from ..roles import ADMIN_ROLE, ROLES, role_name
from ..selectors.users import active_admins
from .audit import Actor, audit


@dataclass(frozen=True)
class PasswordLink:
    """What a one-time set-password URL is made of; the caller builds the URL (view or CLI)."""

    uidb64: str
    token: str
    expires_at: datetime

    @property
    def url_kwargs(self) -> dict:
        return {"uidb64": self.uidb64, "token": self.token}


def _error(field: str, message: str | list[str], code: str) -> ValidationError:
    """{field: messages}, each carrying `code` (the CLI reports it in --json errors)."""
    messages = message if isinstance(message, list) else [message]
    return ValidationError({field: [ValidationError(m, code=code) for m in messages]})


def _lock_admins() -> None:
    """Serialise every change that could leave no active admin (the admin group row is the lock)."""
    Group.objects.select_for_update().filter(name=ADMIN_ROLE).first()


def _check_keeps_an_admin(user: User, field: str) -> None:
    if role_name(user) == ADMIN_ROLE and user.is_active and not active_admins().exclude(pk=user.pk).exists():
        raise _error(field, f"{user.username} is the last active admin; make someone else an admin first.",
                     "last_admin")


def _clean_role(role: str) -> str:
    if role not in ROLES:
        raise _error("role", f"unknown role {role!r}: choose one of {', '.join(ROLES)}", "bad_input")
    return role


def _apply_role(user: User, role: str) -> None:
    user.groups.remove(*Group.objects.filter(name__in=list(ROLES)))
    user.groups.add(Group.objects.get(name=role))
    if role != ADMIN_ROLE:
        # A superuser holds every permission whatever its groups: a demoted one must lose the flag.
        user.is_superuser = False
        user.is_staff = False
        user.save(update_fields=["is_superuser", "is_staff"])


def _validate_new_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise _error("password", exc.messages, "weak_password") from None


def password_link(*, user: User) -> PasswordLink:
    """A one-time link to set the user's password: valid until a password is set (or reset again),
    the user signs in, or PASSWORD_RESET_TIMEOUT passes."""
    return PasswordLink(uidb64=urlsafe_base64_encode(force_bytes(user.pk)),
                        token=default_token_generator.make_token(user),
                        expires_at=timezone.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT))


def user_create(*, username: str, role: str, actor: Actor, password: str | None = None) -> User:
    """A new active user in one role. Without a password, the account has none until the user
    follows a set-password link (see password_link)."""
    username = (username or "").strip()
    errors: dict[str, list[str]] = {}
    try:
        if not username:
            raise ValidationError("this field is required")
        if len(username) > 150:
            raise ValidationError("at most 150 characters")
        User.username_validator(username)
    except ValidationError as exc:
        errors["username"] = exc.messages
    else:
        if User.objects.filter(username__iexact=username).exists():
            errors["username"] = [f"a user named {username!r} already exists"]
    if role not in ROLES:
        errors["role"] = [f"unknown role {role!r}: choose one of {', '.join(ROLES)}"]
    if errors:
        raise ValidationError({field: [ValidationError(m, code="bad_input") for m in messages]
                               for field, messages in errors.items()})
    user = User(username=username)
    if password is not None:
        _validate_new_password(password, user)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            _apply_role(user, role)
            audit(actor=actor, action="user.create", details={
                "user": username, "role": role, "first_password": "given" if password is not None else "link"})
    except IntegrityError:  # the same name added a moment ago by someone else
        raise _error("username", f"a user named {username!r} already exists", "bad_input") from None
    return user


def user_set_role(*, user: User, role: str, actor: Actor) -> bool:
    """Give the user this role; False when they hold it already (nothing audited)."""
    _clean_role(role)
    with transaction.atomic():
        _lock_admins()
        user.refresh_from_db()
        was = role_name(user)
        if was == role:
            return False
        if role != ADMIN_ROLE:
            _check_keeps_an_admin(user, "role")
        _apply_role(user, role)
        audit(actor=actor, action="user.role", details={"user": user.username, "from": was or "none", "to": role})
    return True


def user_set_active(*, user: User, active: bool, actor: Actor) -> bool:
    """Deactivate (they cannot sign in; their open sessions end at their next request) or
    reactivate. False when nothing changes."""
    with transaction.atomic():
        _lock_admins()
        user.refresh_from_db()
        if user.is_active == active:
            return False
        if not active:
            _check_keeps_an_admin(user, "active")
        user.is_active = active
        user.save(update_fields=["is_active"])
        audit(actor=actor, action="user.activate" if active else "user.deactivate", details={"user": user.username})
    return True


def user_reset_password(*, user: User, actor: Actor) -> PasswordLink:
    """The old password stops working at once (and every session of the user ends); the
    returned link lets the user choose a new one."""
    if not user.is_active:
        raise _error("active", f"{user.username} is deactivated: reactivate them before resetting the password.",
                     "inactive")
    with transaction.atomic():
        user.set_unusable_password()
        user.save(update_fields=["password"])
        audit(actor=actor, action="user.password_reset", details={"user": user.username})
    return password_link(user=user)


def password_set(*, user: User, password: str, actor: Actor, via: str) -> None:
    """Store a password the user chose: `via` is "link" (a set-password link) or "change"
    (their own change, old password checked by the form)."""
    _validate_new_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    audit(actor=actor, action="user.password_change" if via == "change" else "user.password_set",
          details={"user": user.username})
