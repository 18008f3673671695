"""The second factor on the web: the sign-in step that asks for it, the Security page (enrol with a
QR code, recovery codes, remove), and the middleware that holds a session at that step.

Signing in is two steps for a user with a confirmed device: the password (or single sign-on)
signs the session in, then SecondFactorMiddleware lets it reach nothing but /accounts/two-factor/
(and signing out) until a code from the app or a recovery code is entered (django-otp then marks
the session verified). An admin without a device, when SECOND_FACTOR_FOR_ADMINS is on (the
default), is held at the Security page until they enrol one. docs/security.md, "Second factor".
"""

from __future__ import annotations

from base64 import b32encode
from urllib.parse import urlencode

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from connections.roles import ADMIN_ROLE, role_of
from connections.services import second_factor as sf
from connections.services.audit import Actor

from .reauth import _redirect, recent_password

# Paths a signed-in but not yet verified session may open.
OPEN_PATHS = ("/accounts/two-factor/", "/accounts/security/", "/accounts/logout/", "/static/", "/metrics",
              "/oidc/")


def _idp_checked(request) -> bool:
    """Single sign-on whose provider asserted a second factor (dashboard/sso.py)."""
    return request is not None and bool(request.session.get("switchboard_sso_mfa"))


def admin_needs_enrolment(user, request=None) -> bool:
    return (settings.SECOND_FACTOR_FOR_ADMINS and role_of(user) == ADMIN_ROLE and not _idp_checked(request)
            and not sf.has_second_factor(user))


def needs_code(user, request=None) -> bool:
    """Signed in with a device but this session has not entered a code yet."""
    return not user.is_verified() and not _idp_checked(request) and sf.has_second_factor(user)


class SecondFactorMiddleware:
    """After django-otp's OTPMiddleware: a session that owes a code (or an admin's enrolment) is sent
    to that page from anywhere else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not request.path.startswith(OPEN_PATHS):
            if needs_code(user, request):
                return _redirect(request, reverse("two_factor") + "?" + urlencode({"next": request.get_full_path()}))
            if admin_needs_enrolment(user, request):
                return _redirect(request, reverse("security"))
        return self.get_response(request)


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or reverse("overview")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return reverse("overview")
    return target


class CodeForm(forms.Form):
    """The code at sign-in: from the app or a recovery code."""

    code = forms.CharField(label="Code", max_length=20, strip=True, widget=forms.TextInput(attrs={
        "autocomplete": "one-time-code", "inputmode": "text", "autofocus": True, "spellcheck": "false",
        "autocapitalize": "off"}), help_text="The 6 digits your authenticator app shows, or one of your recovery codes.")


class EnrolForm(CodeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].help_text = "The 6 digits the app shows now."


@sensitive_post_parameters("code")
def two_factor(request):
    """The second step of signing in."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("login"))
    target = _safe_next(request)
    if not needs_code(request.user, request):
        return HttpResponseRedirect(target)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Locked before this try (django-otp locks for 1 s after one wrong code, 2 s after two, ...):
        # only then "too many"; a first wrong code said "Too many wrong codes: wait 1 seconds".
        locked = sf.wait_seconds(user=request.user)
        device = sf.verify_code(user=request.user, code=form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            if isinstance(device, StaticDevice):
                left = device.token_set.count()
                messages.warning(request, f"You signed in with a recovery code; {left} left. "
                                          "Make new ones on the Security page if you are running out.")
            return HttpResponseRedirect(target)
        form.add_error("code", f"Too many wrong codes: wait {locked} second{pluralize(locked)}, then enter the newest "
                               "code." if locked else
                       "That code is not right (or was used already). Wait for the next one and try again.")
    return render(request, "registration/two_factor.html", {"form": form, "next": target},
                  status=422 if form.errors else 200)


def _qr_svg(device) -> str:
    # Inline SVG (no image request, nothing external); the otpauth URI carries the secret, so this
    # is rendered only while the device is unconfirmed.
    return mark_safe(segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#111", light="#fff",
                                                                          omitsize=True,  # a viewBox: CSS sizes it
                                                                          title="QR code for your authenticator app"))


def _secret_text(device) -> str:
    raw = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def _security_page(request, *, form=None, codes=None, status=200):
    user = request.user
    enrolled = sf.has_second_factor(user)
    context = {"enrolled": enrolled, "codes": codes, "form": form or EnrolForm(),
               "required": settings.SECOND_FACTOR_FOR_ADMINS and role_of(user) == ADMIN_ROLE,
               "recovery_left": None}
    if enrolled:
        static = StaticDevice.objects.filter(user=user, confirmed=True).first()
        context["recovery_left"] = static.token_set.count() if static else 0
    elif codes is None:
        device = sf.pending_totp(user=user)
        context |= {"qr": _qr_svg(device), "secret": _secret_text(device)}
    return render(request, "registration/security.html", context, status=status)


@sensitive_post_parameters("code")
def security(request):
    """GET: the user's second factor (or enrolment). POST: confirm enrolment with a code."""
    if request.method == "POST" and not sf.has_second_factor(request.user):
        form = EnrolForm(request.POST)
        if form.is_valid():
            device = sf.pending_totp(user=request.user)
            codes = sf.totp_confirm(user=request.user, device=device, code=form.cleaned_data["code"],
                                    actor=Actor.from_request(request))
            if codes is not None:
                otp_login(request, device)
                messages.success(request, "Your second factor is on. You will be asked for a code at every sign-in.")
                return _security_page(request, codes=codes)
            form.add_error("code", "That code is not right. Check the time on your phone and enter the newest code.")
        return _security_page(request, form=form, status=422)
    return _security_page(request)


@require_POST
@recent_password
def recovery_codes(request):
    if not sf.has_second_factor(request.user):
        return HttpResponseRedirect(reverse("security"))
    codes = sf.recovery_codes_renew(user=request.user, actor=Actor.from_request(request))
    messages.success(request, "New recovery codes made; the old ones no longer work.")
    return _security_page(request, codes=codes)


@require_POST
@recent_password
def remove(request):
    if sf.second_factor_remove(user=request.user, actor=Actor.from_request(request)):
        messages.success(request, "Your second factor was removed." + (
            " Admins need one: set up a new one now." if admin_needs_enrolment(request.user, request) else ""))
    return HttpResponseRedirect(reverse("security"))
