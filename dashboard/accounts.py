"""Account pages every user has, next to sign-in: change your own password, and set a password
through a one-time link (a new account or a reset by an admin). Django's auth views, styled like
the rest of the site; the password itself is stored and audited by connections.services.users."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect
from django.urls import reverse_lazy

from connections.services.audit import Actor, client_ip
from connections.services.users import password_set


class LoginView(auth_views.LoginView):
    """Django's sign-in, plus a "Sign in with <provider>" button when single sign-on is configured."""

    def get_context_data(self, **kwargs):
        from .sso import sso_enabled

        return super().get_context_data(**kwargs) | {
            "sso_name": settings.OIDC_PROVIDER_NAME if sso_enabled() else ""}


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change.html"
    success_url = reverse_lazy("password_change")

    def form_valid(self, form):
        password_set(user=form.user, password=form.cleaned_data["new_password1"],
                     actor=Actor.from_request(self.request), via="change")
        # Keeps this session signed in; every other session of the user ends.
        update_session_auth_hash(self.request, form.user)
        messages.success(self.request, "Your password was changed. Any other sessions of yours were signed out.")
        return HttpResponseRedirect(self.get_success_url())


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The one-time link: valid until it is used, a newer link replaces it, the user signs in, or
    PASSWORD_RESET_TIMEOUT passes (Django's token covers the password hash and last sign-in)."""

    template_name = "registration/set_password.html"
    success_url = reverse_lazy("login")

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs) | {"link_hours": settings.PASSWORD_RESET_TIMEOUT // 3600}

    def form_valid(self, form):
        actor = Actor(user=self.user, label=self.user.get_username(), via="user", ip=client_ip(self.request))
        password_set(user=self.user, password=form.cleaned_data["new_password1"], actor=actor, via="link")
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        messages.success(self.request, f"Password set for {self.user.get_username()}. Sign in with it now.")
        return HttpResponseRedirect(self.get_success_url())
