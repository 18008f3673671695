"""Recent re-authentication and the session idle timeout (issue 12 item 11).

- Signing in (any backend) stamps the session with the time; `recent_password` views (entering or
  replacing a secret, changing a connection, adding an alert channel) send a user whose stamp is
  older than REAUTH_MAX_AGE to /accounts/confirm/, which asks for the password (through
  authenticate(), so django-axes counts failures) and returns to the page.
- IdleTimeoutMiddleware signs out a session with no request for SESSION_IDLE_TIMEOUT. Background
  polls (app.js marks them X-Switchboard-Poll) are not activity: a tab left open does not keep a
  session alive (docs/decisions.md, "Idle timeout and polling").
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters

AUTH_AT = "switchboard_auth_at"
SEEN_AT = "switchboard_seen_at"
POLL_HEADER = "X-Switchboard-Poll"


@receiver(user_logged_in)
def _stamp_sign_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[AUTH_AT] = request.session[SEEN_AT] = time.time()


def _redirect(request, url: str) -> HttpResponse:
    if request.headers.get("HX-Request"):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def password_is_recent(request) -> bool:
    return time.time() - request.session.get(AUTH_AT, 0) <= settings.REAUTH_MAX_AGE


def recent_password(view):
    """The password must have been entered within REAUTH_MAX_AGE, checked on GET (before the form
    is shown, so nothing typed is lost) and again on POST."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if password_is_recent(request):
            return view(request, *args, **kwargs)
        back = request.get_full_path() if request.method == "GET" else request.headers.get("Referer", "")
        if request.method != "GET":
            messages.warning(request, "Nothing was saved: confirm your password, then make the change again.")
        return _redirect(request, reverse("reauth") + "?" + urlencode({"next": back or request.path}))

    return wrapper


class ConfirmForm(forms.Form):
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password",
                                                                              "autofocus": True}))


class ConfirmWithCodeForm(ConfirmForm):
    code = forms.CharField(label="Code from your authenticator app", max_length=20, strip=True,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false",
                                                         "autocapitalize": "off"}),
                           help_text="Or one of your recovery codes.")


@sensitive_post_parameters("password", "code")
def confirm_password(request):
    target = request.POST.get("next") or request.GET.get("next") or reverse("overview")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("overview")
    from connections.services import second_factor

    from .sso import sso_enabled

    if not request.user.has_usable_password() and sso_enabled():
        # A single sign-on user has no password here: the provider asks for it again (prompt=login).
        return render(request, "registration/confirm_password.html",
                      {"sso_name": settings.OIDC_PROVIDER_NAME, "next": target,
                       "minutes": settings.REAUTH_MAX_AGE // 60})
    with_code = second_factor.has_second_factor(request.user)
    form = (ConfirmWithCodeForm if with_code else ConfirmForm)(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = authenticate(request, username=request.user.get_username(), password=form.cleaned_data["password"])
        if user is None or user.pk != request.user.pk:
            form.add_error("password", "That is not your password. Try again.")
        elif with_code and second_factor.verify_code(user=request.user, code=form.cleaned_data["code"]) is None:
            form.add_error("code", "That code is not right (or was used already). Enter the newest one.")
        else:
            request.session[AUTH_AT] = time.time()
            return HttpResponseRedirect(target)
    return render(request, "registration/confirm_password.html",
                  {"form": form, "next": target, "minutes": settings.REAUTH_MAX_AGE // 60, "with_code": with_code})


class IdleTimeoutMiddleware:
    """After AuthenticationMiddleware: sign out sessions idle longer than SESSION_IDLE_TIMEOUT."""

    WRITE_EVERY = 15  # seconds: fewer session writes; the timeout is that much less exact

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            seen = request.session.get(SEEN_AT)
            if seen is not None and now - seen > settings.SESSION_IDLE_TIMEOUT:
                logout(request)
                messages.info(request, f"You were signed out after {settings.SESSION_IDLE_TIMEOUT // 60} minutes "
                                       "without activity. Sign in again.")
                login = resolve_url(settings.LOGIN_URL)
                if request.method == "GET" and not request.headers.get("HX-Request"):
                    login += "?" + urlencode({"next": request.get_full_path()})
                return _redirect(request, login)
            if not request.headers.get(POLL_HEADER) and (seen is None or now - seen > self.WRITE_EVERY):
                request.session[SEEN_AT] = now
        return self.get_response(request)
