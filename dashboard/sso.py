"""Single sign-on with OpenID Connect (mozilla-django-oidc): authorization code flow with PKCE.

Configured from the environment (settings.py, README "Single sign-on"): OIDC_RP_CLIENT_ID and
OIDC_RP_CLIENT_SECRET, and either OIDC_OP_DISCOVERY_URL (the provider's
/.well-known/openid-configuration, read on first use and cached for an hour) or the
OIDC_OP_AUTHORIZATION_ENDPOINT / TOKEN / USER / JWKS set. Without a client id, SSO is off: the
routes answer 404 and the sign-in page shows no button.

Accounts and roles: connections/services/sso.py. The second factor: an SSO user whose ID token
says the provider checked a second factor (an `amr` value listed in OIDC_MFA_AMR, by default
"mfa", RFC 8176) is not asked for Switchboard's; everyone else is, like a local user
(dashboard/twofactor.py; docs/decisions.md, "SSO and the second factor").
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.utils.decorators import method_decorator
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from connections.outbound.idp import IdpUnreachable, fetch_json
from connections.services.audit import client_ip
from connections.services.sso import role_for, sso_sign_in

log = logging.getLogger(__name__)
SSO_MFA = "switchboard_sso_mfa"  # session: the provider asserted a second factor at this sign-in
SSO_REAUTH = "switchboard_sso_reauth"  # session: this round trip re-authenticates a signed-in user
DISCOVERY_KEYS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def sso_enabled() -> bool:
    return bool(getattr(settings, "OIDC_RP_CLIENT_ID", ""))


def _discovery() -> dict:
    url = settings.OIDC_OP_DISCOVERY_URL
    key = f"oidc-discovery:{url}"
    doc = cache.get(key)
    if doc is None:
        doc = fetch_json(url, timeout=settings.OIDC_TIMEOUT)
        cache.set(key, doc, timeout=3600)
    return doc


def sso_setting(attr, *args):
    """mozilla-django-oidc's settings lookup, with the provider's endpoints from discovery when
    they are not set one by one."""
    value = import_from_settings(attr, *args)
    if attr in DISCOVERY_KEYS and not value and settings.OIDC_OP_DISCOVERY_URL:
        value = _discovery().get(DISCOVERY_KEYS[attr], "")
    return value


class SsoBackend(OIDCAuthenticationBackend):
    """Answers only the SSO callback (a `code` and `state` in the query): a password sign-in never
    reaches the provider, so the break-glass admin signs in while the provider is down."""

    get_settings = staticmethod(sso_setting)

    def __init__(self, *args, **kwargs):  # endpoints are read when a callback arrives, not before
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if request is None or not sso_enabled() or "code" not in request.GET or "state" not in request.GET:
            return None
        super().__init__()
        return super().authenticate(request, **kwargs)

    def get_or_create_user(self, access_token, id_token, payload):
        claims = {**payload, **self.get_userinfo(access_token, id_token, payload)}
        subject = payload.get("sub")
        if not subject or claims.get("sub", subject) != subject:
            raise SuspiciousOperation("the ID token and userinfo name different subjects")
        role = role_for(claims.get(settings.OIDC_ROLE_CLAIM), settings.OIDC_ROLE_MAP)
        user = sso_sign_in(issuer=payload.get("iss", ""), subject=subject,
                           username=claims.get("preferred_username") or (claims.get("email") or "").split("@")[0],
                           email=claims.get("email") or "", role=role, ip=client_ip(self.request))
        if user is None:
            messages.error(self.request, (
                f"{settings.OIDC_PROVIDER_NAME} signed you in, but none of your groups there gives you a role in "
                "Switchboard. Ask an admin to add you to a group for Switchboard.") if role is None
                else "Your Switchboard account is deactivated. Ask an admin.")
            return None
        amr = payload.get("amr") or []
        self.request.session[SSO_MFA] = bool(set(amr if isinstance(amr, list) else [amr]) & set(settings.OIDC_MFA_AMR))
        return user


@method_decorator(login_not_required, name="dispatch")
class SsoStart(OIDCAuthenticationRequestView):
    """/oidc/authenticate/?next=...: off (404) unless configured; `reauth=1` asks the provider to
    ask for the password again (prompt=login, max_age=0) for re-authentication."""

    get_settings = staticmethod(sso_setting)

    def __init__(self, *args, **kwargs):
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        if not sso_enabled():
            raise Http404("single sign-on is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT")
        except IdpUnreachable as exc:
            log.warning("single sign-on: the provider's discovery document could not be read (%s)", exc)
            messages.error(request, f"{settings.OIDC_PROVIDER_NAME} cannot be reached right now. "
                                    "Try again, or sign in with a password.")
            from django.shortcuts import redirect

            return redirect("login")
        self.OIDC_RP_CLIENT_ID = self.get_settings("OIDC_RP_CLIENT_ID")
        return super().get(request)

    def get_extra_params(self, request):
        if request.GET.get("reauth") and request.user.is_authenticated:
            request.session[SSO_REAUTH] = True
            return {"prompt": "login", "max_age": "0"}
        return {}


@method_decorator(login_not_required, name="dispatch")
class SsoCallback(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(sso_setting)

    def get(self, request):
        if not sso_enabled():
            raise Http404("single sign-on is not configured")
        try:
            return super().get(request)
        # requests' errors (the library's token, userinfo and JWKS calls) are OSErrors.
        except (OSError, IdpUnreachable, SuspiciousOperation) as exc:
            log.warning("single sign-on failed: %s", type(exc).__name__)
            messages.error(request, f"Signing in with {settings.OIDC_PROVIDER_NAME} did not work. Try again.")
            return self.login_failure()

    def login_success(self):
        from .reauth import AUTH_AT

        if self.request.session.pop(SSO_REAUTH, False) and self.request.user == self.user:
            # The provider asked for the password again (prompt=login): the same as /accounts/confirm/.
            import time

            self.request.session[AUTH_AT] = time.time()
        return super().login_success()
