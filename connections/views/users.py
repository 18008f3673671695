"""User management for admins: the list, add a user, change a role, deactivate or reactivate,
reset a password. A new user or a reset gets a one-time set-password link, shown once here."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..forms import UserActiveForm, UserCreateForm, UserRoleForm, errors_text
from ..selectors.users import user_rows
from ..services import users as user_services
from ..services.audit import Actor
from .common import can


def _link_page(request, *, subject: User, link: user_services.PasswordLink, created: bool) -> TemplateResponse:
    url = request.build_absolute_uri(reverse("password_set", kwargs=link.url_kwargs))
    return TemplateResponse(request, "connections/user_link.html",
                            {"subject": subject, "link_url": url, "expires_at": link.expires_at, "created": created})


@require_GET
@can("manage_users")
def user_list(request):
    return TemplateResponse(request, "connections/users.html",
                            {"users": user_rows(), "role_form": UserRoleForm()})


@never_cache
@require_http_methods(["GET", "POST"])
@can("manage_users")
def user_create(request):
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_services.user_create(username=form.cleaned_data["username"], role=form.cleaned_data["role"],
                                             actor=Actor.from_request(request))
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return _link_page(request, subject=user, link=user_services.password_link(user=user), created=True)
    return TemplateResponse(request, "connections/user_form.html", {"form": form},
                            status=400 if form.errors else 200)


def _change(request, user_id: int, form_class, change) -> HttpResponse:
    """Parse the form, call `change(user, cleaned_data, actor)` (a service call that returns the
    success message, or "" when nothing changed), report the outcome on the Users page."""
    user = get_object_or_404(User, pk=user_id)
    form = form_class(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(errors_text(form))
        message = change(user, form.cleaned_data, Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, f"{user.username}: nothing changed. {' '.join(exc.messages)}")
    else:
        if message:
            messages.success(request, message)
    return redirect("user_list")


@require_POST
@can("manage_users")
def user_role(request, user_id: int):
    def change(user, data, actor):
        changed = user_services.user_set_role(user=user, role=data["role"], actor=actor)
        return f"{user.username} is now {data['role']}." if changed else ""
    return _change(request, user_id, UserRoleForm, change)


@require_POST
@can("manage_users")
def user_active(request, user_id: int):
    def change(user, data, actor):
        if not user_services.user_set_active(user=user, active=data["active"], actor=actor):
            return ""
        if data["active"]:
            return f"{user.username} can sign in again."
        return f"{user.username} is deactivated: they cannot sign in, and their open sessions end at their next click."
    return _change(request, user_id, UserActiveForm, change)


@never_cache
@require_POST
@can("manage_users")
def user_reset_password(request, user_id: int):
    user = get_object_or_404(User, pk=user_id)
    try:
        link = user_services.user_reset_password(user=user, actor=Actor.from_request(request))
    except ValidationError as exc:
        messages.error(request, f"Nothing changed. {' '.join(exc.messages)}")
        return redirect("user_list")
    return _link_page(request, subject=user, link=link, created=False)
