"""TeleTracker REST API (shared/VENDORS.md, "TeleTracker").

Three auth schemes (Basic, Integrator, Bearer session); success/guid envelopes.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.exceptions import ValidationError

from ..crypto import fingerprint
from .base import Provider
from .http import ErrorInfo, Outbound, RefreshError, Reply, RequestSpec, RetryPolicy, TestStep, basic_token
from .schema import Field

AUTH_SCHEMES = ("basic", "integrator", "bearer_session")
# Log in again this long before the session's computed expiry.
SESSION_MARGIN = 60.0


class TeleTracker(Provider):
    key = "teletracker"
    label = "TeleTracker"
    docs = "shared/VENDORS.md#teletracker-rest-api — https://teletracker.net/developer-documentation/rest-api/"
    default_base_url = "https://api.teletracker.net"
    rescinds_on_refresh = True
    # Shown before a rotation (connections/rotation/): VENDORS.md, the old refresh token dies at once.
    refresh_warning = ("The current TeleTracker session and refresh token stop working immediately; the new ones "
                       "are stored at once. The user name and password are not changed.")
    protected_paths = ("/auth/refresh",)  # VENDORS.md: the refresh rescinds the old secret  # bearer sessions: /auth/refresh kills the old refresh token
    credential_fields = (
        Field("username", "User name"),
        Field("password", "Password", secret=True),
        Field("account_id", "Account id", required=False,
              help="Always sent: without it a user with several accounts runs on an arbitrary one. Required for Integrator."),
        Field("auth_scheme", "Auth scheme", required=False, choices=AUTH_SCHEMES, default="basic",
              help="basic, integrator (Authorization: Integrator), or bearer_session (login + refresh tokens)."),
    )
    option_fields = (
        Field("account_id", "Account id", required=False,
              help="Overrides the account id stored with the credential."),
    )
    support_keeps_days = 14  # VENDORS.md: support keeps debug data for a guid about two weeks
    test_proves = "POST /auth/login with auth_only=1: the user name and password are valid (no session is created)."
    # VENDORS.md: nothing documented beyond "a 5xx may have no body": back off with jitter, 5 tries.
    retry_policy = RetryPolicy(max_attempts=5)

    def clean_secret(self, data: object) -> dict:
        cleaned = super().clean_secret(data)
        if cleaned.get("auth_scheme") == "integrator" and not cleaned.get("account_id"):
            raise ValidationError({"account_id": "required with the integrator auth scheme"})
        return cleaned

    def describe_test(self, options: dict) -> str:
        # VENDORS.md edge case 10: a login without account_id proves nothing about the account.
        return self.test_proves + (" The account id (from the credential or this option) is sent with it, so access "
                                   "to that account is checked too; without one, calls may run on any of the "
                                   "user's accounts.")

    # -- authentication -------------------------------------------------------
    @staticmethod
    def scheme(secret: dict) -> str:
        return secret.get("auth_scheme") or "basic"

    @staticmethod
    def account_id(secret: dict, options: dict) -> str:
        return (options or {}).get("account_id") or secret.get("account_id") or ""

    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        request.headers.setdefault("Accept", "application/json")
        if request.auth == "none":
            return
        account_id = self.account_id(secret, options)
        if request.auth == "login":
            # VENDORS.md: POST /auth/login (username, password, optional account_id) as a form body.
            fields = {"username": secret["username"], "password": secret["password"]}
            if account_id:
                fields["account_id"] = account_id
            request.data = {**(request.data or {}), **fields}
            return
        scheme = self.scheme(secret)
        if scheme == "integrator":
            # VENDORS.md: "Authorization: Integrator base64(user:pass)" with mandatory account_id.
            request.headers["Authorization"] = "Integrator " + basic_token(secret["username"], secret["password"])
        elif scheme == "bearer_session" or request.auth == "session":
            request.headers["Authorization"] = f"Bearer {secret['session']['token']}"
        else:
            request.headers["Authorization"] = "Basic " + basic_token(secret["username"], secret["password"])
        if account_id:
            # VENDORS.md: without account_id a user with several accounts runs on an arbitrary one.
            self._add_field(request, "account_id", account_id)

    @staticmethod
    def _add_field(request: Outbound, name: str, value: str) -> None:
        # GET and DELETE take a query string; POST/PUT bodies carry the field (VENDORS.md).
        if request.method.upper() in ("GET", "DELETE", "HEAD"):
            request.params.setdefault(name, value)
        elif isinstance(request.json, dict):
            request.json.setdefault(name, value)
        elif isinstance(request.data, dict):
            request.data.setdefault(name, value)
        elif request.json is None and request.data is None:
            request.data = {name: value}
        else:
            request.params.setdefault(name, value)

    # -- sessions (bearer_session) ----------------------------------------------------
    def has_session(self, secret: dict) -> bool:
        return isinstance(secret.get("session"), dict) and bool(secret["session"].get("token"))

    def needs_session(self, secret: dict, options: dict, spec: RequestSpec) -> bool:
        if self.scheme(secret) != "bearer_session" or spec.auth != "default":
            return False
        if not self.has_session(secret):
            return True
        return float(secret["session"].get("expires_at") or 0) - SESSION_MARGIN <= time.time()

    def login_request(self, options: dict) -> RequestSpec:
        return RequestSpec("POST", "/auth/login", data={}, auth="login", idempotent=True)

    def _session(self, secret: dict, data: Any, now: float) -> dict:
        body = data.get("data") if isinstance(data, dict) else None
        if not isinstance(body, dict) or not body.get("token") or not body.get("refreshToken"):
            raise RefreshError("the answer carries no token and refreshToken under data")
        try:
            lifetime = float(body.get("tokenLifetime") or 3600)
        except (TypeError, ValueError, OverflowError):
            lifetime = 3600.0
        if not 0 < lifetime <= 366 * 86400:  # NaN, inf or nonsense: the documented 3600 s
            lifetime = 3600.0
        # VENDORS.md: compute expiry from tokenLifetime (clock skew), not tokenExpiration.
        session = {"token": body["token"], "refresh_token": body["refreshToken"], "obtained_at": now,
                   "expires_at": now + lifetime, "lifetime": lifetime,
                   "refresh_expires": str(body.get("refreshTokenExpiration") or "")}
        return {**secret, "session": session}

    def parse_login(self, secret: dict, data: Any, now: float) -> dict:
        return self._session(secret, data, now)

    # -- refresh: the second rescind-on-refresh case ----------------------------------
    def can_refresh(self, secret: dict) -> bool:
        return self.scheme(secret) == "bearer_session" and self.has_session(secret) \
            and bool(secret["session"].get("refresh_token"))

    def refresh_request(self, secret: dict, options: dict | None = None) -> RequestSpec:
        # VENDORS.md: POST /auth/refresh with refresh_token returns a new token AND a new refresh
        # token; the old refresh token no longer works. Never retried blindly (rotation/refresh.py).
        if not self.can_refresh(secret):
            raise RefreshError("no bearer session to refresh: log in first")
        return RequestSpec("POST", "/auth/refresh", data={"refresh_token": secret["session"]["refresh_token"]},
                           auth="none", idempotent=False)

    def parse_refresh(self, secret: dict, data: Any, now: float | None = None) -> dict:
        return self._session(secret, data, time.time() if now is None else now)

    def probe_request(self, secret: dict, options: dict) -> RequestSpec | None:
        # A data call with the stored session token as it is ("session": never logs in first).
        # VENDORS.md's example endpoint; a rescinded session answers 401.
        if not self.has_session(secret):
            return None
        today = dt.date.today().isoformat()
        return RequestSpec("GET", "/reports/call-data", params={"start": today}, auth="session")

    def rotation_mode(self, secret: dict) -> str:
        if self.scheme(secret) != "bearer_session":
            return "replace"
        return "refresh" if self.can_refresh(secret) else "login"

    def recovers_by_login(self, secret: dict) -> bool:
        # A refresh consumes the refresh token; the old access token may still answer, so it
        # proves nothing. The user name and password are untouched: a new login is a new session.
        return self.scheme(secret) == "bearer_session" and bool(secret.get("username") and secret.get("password"))

    def credential_meta(self, secret: dict) -> dict:
        meta = super().credential_meta(secret)
        if self.has_session(secret):
            expires = dt.datetime.fromtimestamp(float(secret["session"]["expires_at"]), dt.UTC)
            meta.update(session_expires_at=expires.isoformat(), session_fingerprint=fingerprint(secret["session"]))
        return meta

    # -- the connection test ------------------------------------------------------
    def test_requests(self, options: dict) -> list[TestStep]:
        # VENDORS.md: POST /auth/login with auth_only=1 checks the password, creates no session.
        spec = RequestSpec("POST", "/auth/login", data={"auth_only": "1"}, auth="login", idempotent=True)
        return [TestStep(spec, self.describe_test(options))]

    # -- answers ----------------------------------------------------------------
    def is_success(self, reply: Reply) -> bool:
        # VENDORS.md edge case 9: the status and the body's success flag together.
        if not 200 <= reply.status < 300:
            return False
        return not (isinstance(reply.data, dict) and reply.data.get("success") is False)

    def request_id(self, reply: Reply) -> str:
        # VENDORS.md: guid on every answer: the request id for support.
        if isinstance(reply.data, dict) and isinstance(reply.data.get("guid"), str):
            return reply.data["guid"][:200]
        return super().request_id(reply)

    def parse_error(self, reply: Reply) -> ErrorInfo:
        info = super().parse_error(reply)
        data = reply.data if isinstance(reply.data, dict) else {}
        if data.get("errorDetail"):
            info.details["errorDetail"] = data["errorDetail"]
        missing = data.get("missingInputVars")
        if missing:
            info.details["missingInputVars"] = missing
            names = missing if isinstance(missing, list) else [missing]  # documented as a list; not always
            info.message = f"{info.message} Missing: {', '.join(map(str, names))}."
        if 200 <= reply.status < 300:
            info.code = "vendor_error"
        if info.request_id:
            until = dt.date.today() + dt.timedelta(days=self.support_keeps_days)
            info.details["support_until"] = until.isoformat()  # VENDORS.md: debug data kept ~2 weeks
        return info
