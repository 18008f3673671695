"""Generic OAuth 2.0 (provider key `oauth2`): any API that takes a bearer access token from a
token endpoint (RFC 6749), by the client-credentials grant or the refresh-token grant.

Secrets: client_id, client_secret and, for the refresh-token grant, refresh_token (pasted, or
stored by "Connect": authorization code + PKCE, services/oauth2_connect.py and
rotation/connect.py). Options: token_url, authorize_url, scope, test_path, client_auth (basic|post), probe (none|access_token).

Where the access token lives: inside the credential's encrypted secret under "session", like
TeleTracker's bearer sessions (outbound/sessions.py). A client-credentials token is a "login"
(asked again whenever it expires). A refresh is a rotation (rotation/refresh.py): servers that
follow RFC 9700 §4.14.2 rotate the refresh token on every refresh and revoke the whole grant
when a rotated one is presented again, so it runs under the claim, once, journaled and spooled,
and a new refresh token is a new credential version (the old one is marked rescinded). The
mechanics (requests, answers, PKCE, error words) are in oauth2_grants.py.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.exceptions import ValidationError

from ..crypto import fingerprint
from . import oauth2_grants as grants
from .base import Provider, split_url
from .http import ErrorInfo, Outbound, Reply, RequestSpec, TestStep
from .schema import Field

PROBES = ("none", "access_token")


def _absolute(url: str) -> bool:
    return "://" in url.split("?", 1)[0]


class OAuth2(Provider):
    key = "oauth2"
    label = "OAuth 2.0"
    docs = "RFC 6749 (OAuth 2.0), RFC 7636 (PKCE), RFC 9700 §4.14.2 (refresh token rotation)"
    rescinds_on_refresh = True
    refresh_warning = ("The authorization server issues a new access token and, when it rotates refresh tokens, a "
                       "new refresh token: the current refresh token stops working at once and Switchboard stores "
                       "the new one immediately.")
    reauthorize_advice = ("re-authorize: press Connect on the connection page (the authorization server's consent "
                          "page issues a new grant), or paste a new refresh token (Rotate → \"Paste a new secret\", "
                          "or `connections rotate {name} --stdin`)")
    login_words = "asked the token endpoint for an access token (client credentials)"
    credential_fields = (
        Field("client_id", "Client id", help="The client (application) id registered at the authorization server."),
        Field("client_secret", "Client secret", secret=True),
        Field("refresh_token", "Refresh token", secret=True, required=False,
              help="For the refresh-token grant: paste one, or leave empty and press Connect after saving. "
                   "Empty: the client-credentials grant."),
    )
    option_fields = (
        Field("token_url", "Token URL", help="The token endpoint, e.g. https://auth.example.com/oauth/token"),
        Field("authorize_url", "Authorization URL", required=False,
              help="The authorization endpoint (consent page), for Connect."),
        Field("scope", "Scope", required=False, help="Space-separated scopes to ask for."),
        Field("test_path", "Test path", default="/", help="A cheap GET on the API that needs the access token."),
        Field("client_auth", "Client authentication", choices=grants.CLIENT_AUTH, default="basic",
              help="basic: HTTP Basic header (RFC 6749 §2.3.1); post: client_id and client_secret in the body."),
        Field("probe", "Lost-answer probe", choices=PROBES, default="none",
              help="access_token: the server revokes the old access token when it rotates the refresh token "
                   "(django-oauth-toolkit does), so a call with it tells whether a lost refresh happened. "
                   "none: a lost refresh answer needs re-authorization."),
    )
    test_proves = "GET on the test path with the access token: the API accepts tokens issued to this client."
    url_options = ("token_url", "authorize_url")

    # -- schema -------------------------------------------------------------------
    def clean_options(self, data: object) -> dict:
        cleaned = super().clean_options(data)
        errors = {}
        for name in self.url_options:
            value = cleaned.get(name)
            if not value:
                continue
            parts = split_url(value)
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                errors[name] = "must be an absolute http(s) URL, e.g. https://auth.example.com/oauth/token"
            elif parts.username or parts.password or parts.fragment:
                errors[name] = "must not carry credentials or a fragment"
        path = cleaned.get("test_path", "/")
        if _absolute(path) or not path.startswith("/") or path.startswith("//"):
            errors["test_path"] = "must be a path on the API, starting with /, e.g. /v1/me"
        if errors:
            raise ValidationError(errors)
        return cleaned

    def describe_test(self, options: dict) -> str:
        return f"GET {options.get('test_path') or '/'} with the access token: " + (
            "the token endpoint issues tokens for this client and the API accepts them.")

    def secret_urls(self, base_url: str, options: dict) -> list[str]:
        token_url = (options or {}).get("token_url")
        return [base_url] + ([token_url] if token_url else [])

    # -- addressing: the token endpoint is the one absolute URL a request may name ------
    def url_for(self, base_url: str, path: str) -> str:
        if _absolute(path):
            # Only the token requests built below name one; the client sends a secret only to the
            # origins it was entered for (the base URL's and the token URL's), and ad-hoc calls
            # may not name absolute URLs (is_protected).
            return path
        return super().url_for(base_url, path)

    def is_protected(self, base_url: str, path: str) -> bool:
        return _absolute(path) or super().is_protected(base_url, path)

    # -- authentication -----------------------------------------------------------
    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        request.headers.setdefault("Accept", "application/json")
        if request.auth == "none":
            return
        if request.auth in ("token", "login"):
            grants.add_client_auth(request, secret["client_id"], secret["client_secret"],
                                   (options or {}).get("client_auth") or "basic")
            return
        session = secret.get("session") or {}
        if session.get("token"):
            request.headers["Authorization"] = f"Bearer {session['token']}"

    # -- the access token (a session inside the credential) ---------------------------
    def has_session(self, secret: dict) -> bool:
        return isinstance(secret.get("session"), dict) and bool(secret["session"].get("token"))

    def needs_session(self, secret: dict, options: dict, spec: RequestSpec) -> bool:
        return spec.auth == "default" and grants.expires_soon(secret.get("session"), time.time())

    def renews_by_rotation(self, secret: dict) -> bool:
        return bool(secret.get("refresh_token"))

    def login_request(self, options: dict) -> RequestSpec:
        spec = grants.token_request(options["token_url"], grant="client_credentials", scope=options.get("scope", ""))
        spec.auth = "login"
        return spec

    def parse_login(self, secret: dict, data: Any, now: float) -> dict:
        tokens = grants.parse_token_answer(data, now)
        return {**secret, "session": grants.session_of(tokens)}

    # -- refresh (the refresh-token grant) ------------------------------------------
    def can_refresh(self, secret: dict) -> bool:
        return bool(secret.get("refresh_token"))

    def refresh_request(self, secret: dict, options: dict | None = None) -> RequestSpec:
        return grants.token_request((options or {})["token_url"], grant="refresh_token",
                                    refresh_token=secret["refresh_token"])

    def parse_refresh(self, secret: dict, data: Any, now: float | None = None) -> dict:
        tokens = grants.parse_token_answer(data, time.time() if now is None else now)
        # RFC 6749 §6: a server that does not rotate keeps the refresh token; the stored one stays.
        return {**{k: v for k, v in secret.items() if k != "session"},
                "refresh_token": tokens.refresh_token or secret["refresh_token"],
                "session": grants.session_of(tokens)}

    def supports_connect(self, options: dict) -> bool:
        return bool((options or {}).get("authorize_url"))

    def code_request(self, options: dict, *, code: str, verifier: str, redirect_uri: str) -> RequestSpec:
        """RFC 6749 §4.1.3 with the RFC 7636 verifier: the "Connect" exchange."""
        return grants.token_request(options["token_url"], grant="authorization_code", code=code,
                                    redirect_uri=redirect_uri, code_verifier=verifier)

    def probe_request(self, secret: dict, options: dict) -> RequestSpec | None:
        if (options or {}).get("probe") != "access_token" or not self.has_session(secret):
            return None
        return RequestSpec("GET", (options or {}).get("test_path") or "/", auth="session")

    probe_hint = ("set the option probe=access_token if the authorization server revokes the old access token "
                  "when it rotates the refresh token, as django-oauth-toolkit does")

    def rotation_mode(self, secret: dict) -> str:
        return "refresh" if self.can_refresh(secret) else "login"

    def recovers_by_login(self, secret: dict) -> bool:
        # Client credentials: asking for a new token replaces whatever a lost request did.
        return not secret.get("refresh_token")

    def verifies_by_refresh(self, secret: dict) -> bool:
        return bool(secret.get("refresh_token")) and not self.has_session(secret)

    def grant_refused(self, status: int | None, error: ErrorInfo) -> bool:
        return error.code == "invalid_grant"

    def credential_meta(self, secret: dict) -> dict:
        meta = super().credential_meta(secret)
        meta["grant"] = "refresh_token" if secret.get("refresh_token") else "client_credentials"
        if secret.get("refresh_token"):
            meta["refresh_fingerprint"] = fingerprint({"refresh_token": secret["refresh_token"]})
        session = secret.get("session")
        if self.has_session(secret):
            meta["session_fingerprint"] = fingerprint(session)
            if session.get("expires_at"):
                meta["session_expires_at"] = dt.datetime.fromtimestamp(float(session["expires_at"]), dt.UTC).isoformat()
        return meta

    def test_requests(self, options: dict) -> list[TestStep]:
        return [TestStep(RequestSpec("GET", options.get("test_path") or "/"), self.describe_test(options))]

    # -- answers ----------------------------------------------------------------------
    def parse_error(self, reply: Reply) -> ErrorInfo:
        info = super().parse_error(reply)
        code, description = grants.grant_error(reply.data)
        if code:
            # RFC 6749 §5.2: {"error": "invalid_grant", "error_description": "..."}
            info.code, info.message = code, grants.explain_grant_error(code, description)
        www = reply.headers.get("WWW-Authenticate") or ""
        if not code and "error=" in www:
            info.details["www_authenticate"] = www[:300]  # RFC 6750 §3: invalid_token, insufficient_scope
        return info
