"""Declarative vendors with an OAuth 2.0 scheme, on the generic oauth2 provider's mechanics.

`oauth2_client_credentials` and `oauth2_refresh` in a definition become this class: the data
parts (hosts, tests, error envelope, rate limits, retries) come from DeclarativeProvider, the
token parts from OAuth2 (providers/oauth2.py): the access token as a session inside the
credential, client-credentials tokens asked for again when they expire, refresh tokens rotated
under the rotation claim and journal (never a replay, never a blind retry), invalid_grant
explained, Connect (authorization code + PKCE). The definition's token_url, authorize_url,
scope and client_auth are the connection's default options; a connection may point the URLs
elsewhere, but only on the vendor's allowed hosts.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from . import oauth2_grants as grants
from .base import Provider, split_url
from .declarative import DeclarativeProvider
from .http import ErrorInfo, Outbound, Reply, RequestSpec
from .oauth2 import OAuth2, _absolute
from .schema import Field
from .vendor_files import Definition


class DeclarativeOAuth2(DeclarativeProvider, OAuth2):
    """MRO: the declarative hooks first, then OAuth2's token hooks (has_session, needs_session,
    login_request, parse_login, can_refresh, refresh_request, parse_refresh, code_request,
    rotation_mode, recovers_by_login, verifies_by_refresh, grant_refused, credential_meta, ...)."""

    def __init__(self, definition: Definition, source: str = ""):
        super().__init__(definition, source)
        a = definition.auth
        self.option_fields = (
            Field("token_url", "Token URL", default=a.token_url,
                  help=f"The token endpoint, on one of: {', '.join(definition.allowed_hosts)}."),
            Field("authorize_url", "Authorization URL", required=False, default=a.authorize_url or None,
                  help="The consent page, for Connect."),
            Field("scope", "Scope", required=False, default=a.scope or None),
            Field("client_auth", "Client authentication", choices=grants.CLIENT_AUTH, default=a.client_auth),
        )

    # -- schema: the URL options stay on the vendor's allowed hosts ------------------------
    def clean_options(self, data: object) -> dict:
        cleaned = Provider.clean_options(self, data)
        errors = {}
        for name in self.url_options:
            value = cleaned.get(name)
            if not value:
                continue
            parts = split_url(value)
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.fragment:
                errors[name] = "must be an absolute http(s) URL without credentials or fragment"
            else:
                problem = self._check_host(value)
                if problem:
                    errors[name] = problem
        if errors:
            raise ValidationError(errors)
        return cleaned

    # -- addressing: the token endpoint is the one absolute URL a request may name ----------
    def url_for(self, base_url: str, path: str) -> str:
        if _absolute(path):
            # Only token requests name one (is_protected keeps ad-hoc calls from doing so).
            problem = self._check_host(path)
            if problem:
                raise ValueError(problem)
            return path
        return super().url_for(base_url, path)

    # -- authentication: the token hooks are OAuth2's ---------------------------------------
    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        if request.auth in ("token", "login", "none"):
            OAuth2.authenticate(self, request, secret, options)
            return
        for name, value in self.definition.headers:
            request.headers.setdefault(name, value)
        OAuth2.authenticate(self, request, secret, options)

    has_session = OAuth2.has_session
    needs_session = OAuth2.needs_session
    login_request = OAuth2.login_request
    parse_login = OAuth2.parse_login
    credential_meta = OAuth2.credential_meta
    describe_test = DeclarativeProvider.describe_test

    def probe_request(self, secret: dict, options: dict) -> RequestSpec | None:
        # Only where the definition says the server revokes the old access token on rotation.
        if self.definition.auth.probe != "access_token" or not self.has_session(secret):
            return None
        spec = self._spec(0)
        spec.auth = "session"
        return spec

    # -- answers: the vendor's envelope, and RFC 6749 §5.2 errors of the token endpoint ------
    def parse_error(self, reply: Reply) -> ErrorInfo:
        info = DeclarativeProvider.parse_error(self, reply)
        code, description = grants.grant_error(reply.data)
        if code:
            info.code, info.message = code, grants.explain_grant_error(code, description)
        return info
