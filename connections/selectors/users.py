"""Accounts for the user management page and `manage.py users list`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from ..roles import ADMIN_ROLE, role_name


@dataclass(frozen=True)
class UserRow:
    pk: int
    username: str
    role: str  # "" when the user holds no role
    is_active: bool
    has_password: bool  # False until a set-password link is used
    last_login: datetime | None
    date_joined: datetime


def user_row(*, user: User) -> UserRow:
    return UserRow(pk=user.pk, username=user.username, role=role_name(user), is_active=user.is_active,
                   has_password=user.has_usable_password(), last_login=user.last_login, date_joined=user.date_joined)


def user_rows() -> list[UserRow]:
    """Every account, active ones first, then by name (two queries)."""
    return [user_row(user=u) for u in User.objects.prefetch_related("groups").order_by("-is_active", "username")]


def active_admins() -> QuerySet[User]:
    """Active users in the admin role (a superuser counts as one)."""
    return User.objects.filter(Q(groups__name=ADMIN_ROLE) | Q(is_superuser=True), is_active=True).distinct()
