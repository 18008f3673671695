"""OAuth 2.0 token and grant mechanics: what goes to a token endpoint and what comes back.

Pure functions, no I/O, no database: the `oauth2` provider (providers/oauth2.py) builds on them,
and so may any provider whose auth scheme is "OAuth 2.0 client credentials" or "OAuth 2.0
refresh" (a declarative vendor: give it these fields and call these functions from its hooks).
The rotation machinery (connections/rotation/) does the sending, once, with claim, journal and
spool; nothing here retries.

Interface
---------
    token_request(token_url, grant=..., **params) -> RequestSpec
        The token-endpoint request (RFC 6749 §4.1.3, §4.4.2, §6) for grant "authorization_code",
        "client_credentials" or "refresh_token", with auth="token": the provider's authenticate()
        adds the client authentication at send time, from the stored secret, with:
    add_client_auth(request, client_id, client_secret, client_auth)
        RFC 6749 §2.3.1: an HTTP Basic header for "basic" (id and secret form-urlencoded first),
        or client_id/client_secret body fields for "post".
    parse_token_answer(data, now) -> TokenSet       RefreshError when it is not a token answer
    session_of(tokens) -> dict                      what a credential stores under "session"
    expires_soon(session, now, margin=None) -> bool when to renew an access token on demand
    grant_error(data) -> (code, description)        the RFC 6749 §5.2 error of a refused answer
    explain_grant_error(code, description) -> str   the operator's sentence (invalid_grant ...)
    pkce_pair() -> (verifier, challenge)            RFC 7636, S256
    authorization_url(authorize_url, client_id=..., redirect_uri=..., state=..., challenge=...,
                      scope="") -> str              the consent page's address (§4.1.1)

A stored session: {"token", "token_type", "obtained_at", "expires_at" (Unix time or None when the
server gave no expires_in), "lifetime", "scope"}. The refresh token itself is never inside the
session: it is the credential's own `refresh_token` field, so a new one is a new credential
version and the one it replaced is marked rescinded (rotation/refresh.py).
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from .http import Outbound, RefreshError, RequestSpec

GRANTS = ("authorization_code", "client_credentials", "refresh_token")
CLIENT_AUTH = ("basic", "post")
# Renew an access token on demand this long before it expires (at most a quarter of its life).
ON_DEMAND_MARGIN = 30.0
MAX_LIFETIME = 366 * 86400.0

GRANT_ERRORS = {
    # RFC 6749 §5.2, in the words an operator needs.
    "invalid_grant": ("the authorization server refused the grant: the refresh token (or code) is invalid, "
                      "expired, revoked, already used, or was issued to another client. Servers that rotate "
                      "refresh tokens revoke the whole grant when a used one is presented again"),
    "invalid_client": "the authorization server did not accept the client id and secret (or the client_auth option)",
    "unauthorized_client": "this client may not use this grant type at the authorization server",
    "unsupported_grant_type": "the authorization server does not support this grant type",
    "invalid_scope": "the scope asked for is invalid or more than the grant allows",
    "invalid_request": "the authorization server found the token request malformed",
}


@dataclass
class TokenSet:
    access_token: str
    token_type: str = "Bearer"
    expires_in: float | None = None
    refresh_token: str = ""
    scope: str = ""
    obtained_at: float = 0.0
    id_token: str = ""


def token_request(token_url: str, *, grant: str, **params: str) -> RequestSpec:
    if grant not in GRANTS:
        raise ValueError(f"unknown grant {grant!r}")
    data = {"grant_type": grant, **{k: v for k, v in params.items() if v}}
    # A client-credentials grant can be asked again safely; a code or a refresh token is spent once.
    return RequestSpec("POST", token_url, data=data, headers={"Accept": "application/json"}, auth="token",
                       idempotent=grant == "client_credentials", expect=("application/json",))


def add_client_auth(request: Outbound, client_id: str, client_secret: str, client_auth: str = "basic") -> None:
    if client_auth == "post":
        request.data = {**(request.data or {}), "client_id": client_id, "client_secret": client_secret}
        return
    # RFC 6749 §2.3.1: both are form-urlencoded before they are joined and base64-encoded.
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
    request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()


def parse_token_answer(data: Any, now: float) -> TokenSet:
    """RFC 6749 §5.1: access_token and token_type required; expires_in, refresh_token, scope optional."""
    if not isinstance(data, dict):
        raise RefreshError("the token answer is not a JSON object")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise RefreshError("the token answer carries no access_token")
    token_type = data.get("token_type") or "Bearer"
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise RefreshError(f"unsupported token_type {str(token_type)[:40]!r} (only Bearer is supported)")
    refresh = data.get("refresh_token") or ""
    if not isinstance(refresh, str):
        raise RefreshError("the refresh_token in the token answer is not a string")
    expires_in = _seconds(data.get("expires_in"))
    scope = data.get("scope") if isinstance(data.get("scope"), str) else ""
    id_token = data.get("id_token") if isinstance(data.get("id_token"), str) else ""
    return TokenSet(access_token=token, token_type="Bearer", expires_in=expires_in, refresh_token=refresh,
                    scope=scope[:1000], obtained_at=now, id_token=id_token)


def _seconds(value: Any) -> float | None:
    """expires_in as seconds, or None when absent or nonsense (NaN, negative, beyond a year)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_LIFETIME:
        return None
    return seconds


def session_of(tokens: TokenSet) -> dict:
    expires_at = tokens.obtained_at + tokens.expires_in if tokens.expires_in else None
    return {"token": tokens.access_token, "token_type": tokens.token_type, "obtained_at": tokens.obtained_at,
            "expires_at": expires_at, "lifetime": tokens.expires_in, "scope": tokens.scope}


def expires_soon(session: dict | None, now: float, margin: float | None = None) -> bool:
    """Is there no usable access token (none, or one expiring within the margin)? A token without
    an expiry is used until the API rejects it."""
    if not isinstance(session, dict) or not session.get("token"):
        return True
    expires_at = session.get("expires_at")
    if expires_at in (None, ""):
        return False
    try:
        expires_at = float(expires_at)
        lifetime = float(session.get("lifetime") or 0)
    except (TypeError, ValueError):
        return True
    if margin is None:
        margin = min(ON_DEMAND_MARGIN, lifetime / 4) if lifetime > 0 else ON_DEMAND_MARGIN
    return expires_at - margin <= now


def grant_error(data: Any) -> tuple[str, str]:
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        return "", ""
    description = data.get("error_description")
    return data["error"][:100], (description[:500] if isinstance(description, str) else "")


def explain_grant_error(code: str, description: str = "") -> str:
    meaning = GRANT_ERRORS.get(code)
    said = f" (the server said: {description.rstrip('.')})" if description else ""
    if meaning is None:
        return f"{code}{said}" if code else description
    return f"{code}: {meaning}{said}"


def pkce_pair() -> tuple[str, str]:
    """RFC 7636 §4.1-4.2: a 64-character verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(authorize_url: str, *, client_id: str, redirect_uri: str, state: str, challenge: str,
                      scope: str = "") -> str:
    parts = urlsplit(authorize_url)
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
             "code_challenge": challenge, "code_challenge_method": "S256"}
    if scope:
        query["scope"] = scope
    joined = (parts.query + "&" if parts.query else "") + urlencode(query)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, ""))
