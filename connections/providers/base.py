"""The Provider base class: what every vendor declares, and the shared behaviour vendors
override in small hooks.

A provider is one module per vendor, registered by key in registry.py. The field schema lives
in schema.py and the HTTP types and body parsing in http.py; this module holds the base class
only. The base implements the generic HTTP behaviour (URL joining, error envelopes, rate-limit
headers, retry with backoff); each vendor overrides the hooks where its documentation
(shared/VENDORS.md) says otherwise. Every hook is declared here, once.
"""

from __future__ import annotations

import random
import re
import time
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.core.exceptions import ValidationError

from .http import (
    JSON,
    Attempt,
    ErrorInfo,
    Outbound,
    RateLimitInfo,
    Reply,
    RequestSpec,
    RetryPolicy,
    TestStep,
    ThrottlePlan,
    first_line,
    header_int,
    html_summary,
    parse_retry_after,
    status_code_name,
)
from .schema import Field, check_secret_sizes, clean_fields

# JSON keys whose string values in a response are secrets (a refresh's new token, a login's session).
_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|authorization|session)", re.I)
_NOT_SECRET_KEY = re.compile(r"(expir|lifetime|type|_at$|ttl|scope)", re.I)



def split_url(value: str) -> SplitResult | None:
    """urlsplit, or None where it (or reading the port) raises: "http://[::1" (an unclosed IPv6
    bracket) or "https://host:99999" must be a field error on the form, not a 500."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a port out of range or not a number
    except ValueError:
        return None
    return parts

class Provider:
    """Base class. Subclasses set the class attributes and override the hooks that differ."""

    key: str = ""
    label: str = ""
    docs: str = ""  # where the behaviour comes from (shared/VENDORS.md section + vendor URL)
    default_base_url: str = ""
    credential_fields: tuple[Field, ...] = ()
    option_fields: tuple[Field, ...] = ()
    # Rescind-on-refresh vendors (the refresh call invalidates the old secret) set this.
    rescinds_on_refresh: bool = False
    # What the connection test proves, shown on the page next to the result.
    test_proves: str = ""
    # Media types a successful answer may carry (an empty body always passes).
    expected_types: tuple[str, ...] = (JSON,)
    retry_policy: RetryPolicy = RetryPolicy()
    # Where the documented rate limit is uncertain, what the overview says next to it (Cleverbridge).
    rate_limit_note: str = ""

    # -- schema -------------------------------------------------------------
    def clean_secret(self, data: object) -> dict:
        check_secret_sizes(self.credential_fields, data)
        return clean_fields(self.credential_fields, data, what="secret")

    def clean_options(self, data: object) -> dict:
        return clean_fields(self.option_fields, data or {}, what="option")

    def default_options(self) -> dict:
        return {f.name: f.default for f in self.option_fields if f.default is not None}

    def secret_field_names(self) -> list[str]:
        return [f.name for f in self.credential_fields if f.secret]

    def clean_base_url(self, base_url: str) -> str:
        """Syntactic check only (the outbound guard checks addresses at send time)."""
        if any(ord(ch) < 32 or ch.isspace() for ch in base_url.strip()):
            raise ValidationError({"base_url": "must not contain spaces or control characters"})
        parts = split_url(base_url.strip())
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError({"base_url": "must be an absolute http(s) URL, e.g. " + (self.default_base_url or "https://api.example.com")})
        if parts.query or parts.fragment:
            raise ValidationError({"base_url": "must not carry a query string or fragment"})
        if parts.username or parts.password:
            raise ValidationError({"base_url": "must not carry credentials; put them in the secret"})
        return base_url.strip().rstrip("/")

    def describe_test(self, options: dict) -> str:
        return self.test_proves

    def describe_limits(self) -> str:
        """The rate limits in force for this vendor, in words (pages show it next to headroom)."""
        return "No rate limit documented; 5xx and network errors back off with jitter, at most 5 tries."

    # -- addressing ---------------------------------------------------------
    def api_root(self, base_url: str) -> str:
        """The base URL normalised to the root that request paths are appended to."""
        return base_url.strip().rstrip("/")

    def url_for(self, base_url: str, path: str) -> str:
        """The full URL of a request path. Absolute URLs are refused: a credential only ever
        goes to its connection's own base URL."""
        if "://" in path.split("?", 1)[0] or path.startswith("//"):
            raise ValueError("the path must be relative to the connection's base URL, not a full URL")
        return self.api_root(base_url) + "/" + path.lstrip("/")

    # -- authentication -------------------------------------------------------
    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        """Add the credential to an outbound request (headers, parameters or body fields)."""

    def secret_values(self, secret: dict) -> list[str]:
        """Every secret value of a credential: the fields declared secret, and the token-like values
        of nested objects (a stored session). Identifiers (user names, account ids) and choices are
        not secrets: they are shown like fingerprints, never masked (connections/outbound/redaction.py)."""
        fields = {f.name: f for f in self.credential_fields}
        values: list[str] = []
        for name, value in secret.items():
            f = fields.get(name)
            if f is not None:
                if f.secret and isinstance(value, str) and value:
                    values.append(value)
            elif isinstance(value, dict | list):
                values.extend(self.response_secrets(value))
            elif isinstance(value, str) and value:
                values.append(value)  # a field no schema declares: treated as secret
        return values

    def composite_values(self, secret: dict) -> list[str]:
        """Secret strings made of an identifier and a secret ("user:password", the text under a
        Basic header's base64): masked only whole, never as a prefix (that would be the user name)."""
        if secret.get("username") and secret.get("password"):
            return [f"{secret['username']}:{secret['password']}"]
        return []

    def response_secrets(self, data: Any) -> list[str]:
        """Secret values an answer carries (a refresh's new token, a login's session tokens):
        string values under token/secret/password/session keys, found anywhere in the body."""
        found: list[str] = []

        def walk(obj: Any, key: str = "") -> None:
            if isinstance(obj, dict):
                for k, v in obj.items():
                    walk(v, str(k))
            elif isinstance(obj, list):
                for v in obj:
                    walk(v, key)
            elif isinstance(obj, str) and obj and _SECRET_KEY.search(key) and not _NOT_SECRET_KEY.search(key):
                found.append(obj)

        walk(data)
        return found

    # Sessions (TeleTracker bearer sessions): a login before the first call, stored encrypted.
    def needs_session(self, secret: dict, options: dict, spec: RequestSpec) -> bool:
        return False

    def has_session(self, secret: dict) -> bool:
        return False

    def login_request(self, options: dict) -> RequestSpec:
        raise NotImplementedError(f"{self.key} has no sessions")

    def parse_login(self, secret: dict, data: Any, now: float) -> dict:
        raise NotImplementedError(f"{self.key} has no sessions")

    # -- the connection test ----------------------------------------------------
    def test_requests(self, options: dict) -> list[TestStep]:
        """The connection test as data: the requests the testing service sends, in order."""
        raise NotImplementedError

    # -- refresh (rescind-on-refresh vendors) -------------------------------------
    def can_refresh(self, secret: dict) -> bool:
        return False

    def refresh_request(self, secret: dict, options: dict | None = None) -> RequestSpec:
        raise NotImplementedError(f"{self.key} has no refresh endpoint")

    def parse_refresh(self, secret: dict, data: Any, now: float | None = None) -> dict:
        """The new secret from a successful refresh answer; RefreshError when it is not there."""
        raise NotImplementedError(f"{self.key} has no refresh endpoint")

    def probe_request(self, secret: dict, options: dict) -> RequestSpec | None:
        """A cheap authenticated call that tells whether a (possibly rescinded) secret is still
        accepted, without rotating anything; None when the vendor has none (rotation/refresh.py)."""
        return None

    probe_hint: str = ""  # what an operator can change so a probe becomes possible
    # Shown before a refresh runs (rotation/refresh.py; empty: a generic sentence).
    refresh_warning: str = ""
    # How long the vendor's support keeps a request's data, where the vendor documents it (days).
    support_keeps_days: int | None = None
    # Paths an ad-hoc call must never reach (a refresh would rescind the secret without storing
    # the new one): only rotation/ calls them.
    protected_paths: tuple[str, ...] = ()

    def is_protected(self, base_url: str, path: str) -> bool:
        target = self.url_for(base_url, path.split("?", 1)[0]).rstrip("/")
        return any(self.url_for(base_url, p).rstrip("/") == target for p in self.protected_paths)

    def rotation_mode(self, secret: dict) -> str:
        """How this secret rotates: "refresh" (the vendor issues the next one), "login" (a
        bearer-session credential with no session yet: rotating starts one) or "replace" (an
        operator pastes a new one). Stored in Credential.meta, so pages never decrypt to decide."""
        return "refresh" if self.rescinds_on_refresh and self.can_refresh(secret) else "replace"

    def renews_by_rotation(self, secret: dict) -> bool:
        """Is a new session (access token) obtained by a refresh that rotates the secret? Then a
        call that finds it expired renews it through rotation (claim, journal, spool), not a login
        (oauth2's refresh-token grant)."""
        return False

    def verifies_by_refresh(self, secret: dict) -> bool:
        """Can a pasted secret only be checked by consuming it (a refresh token without an access
        token)? Then a paste is promoted and refreshed under the claim, and put back if refused."""
        return False

    def grant_refused(self, status: int | None, error: ErrorInfo) -> bool:
        """Does a refused refresh say the secret is dead for good (OAuth 2.0 invalid_grant)? The
        connection then needs attention (reauthorize_advice) and is not refreshed with it again."""
        return False

    # How a session starts, in the journal's words ("Started a <label> session: <login_words>").
    login_words: str = "logged in with the stored user name and password"
    # What to do when the refresh secret is lost or dead ("{name}": the connection), e.g. oauth2's
    # "re-authorize: press Connect"; empty: ask the vendor's support for a new secret.
    reauthorize_advice: str = ""
    # Options that are URLs a secret is sent to or a browser is sent to (checked like base URLs).
    url_options: tuple[str, ...] = ()

    def supports_connect(self, options: dict) -> bool:
        """Can the connection page start an authorization-code flow ("Connect", oauth2)?"""
        return False

    def secret_urls(self, base_url: str, options: dict) -> list[str]:
        """Every URL this connection's secret is sent to: it is bound to their origins (vault)."""
        return [base_url]

    def recovers_by_login(self, secret: dict) -> bool:
        """After a refresh whose outcome is unknown, does logging in again with the stored
        credential replace whatever the refresh consumed? (TeleTracker sessions: the refresh
        token cannot be checked without consuming it, but the password is untouched.)"""
        return False

    def credential_meta(self, secret: dict) -> dict:
        """Non-secret facts stored with a credential: how it rotates (and e.g. a session's expiry)."""
        return {"rotation": self.rotation_mode(secret)}

    # -- answers -----------------------------------------------------------------
    def accepts(self, options: dict) -> tuple[str, ...]:
        return self.expected_types

    def is_success(self, reply: Reply) -> bool:
        return 200 <= reply.status < 300

    def request_id(self, reply: Reply) -> str:
        for name in ("X-Request-Id", "X-Request-ID", "Request-Id", "X-Correlation-Id"):
            value = reply.headers.get(name)
            if value:
                return value[:200]
        return ""

    def error_message(self, reply: Reply) -> str:
        """A readable message from whatever the body is."""
        data = reply.data
        if isinstance(data, dict):
            for key in ("message", "error_msg", "errorDetail", "detail", "title", "error_description", "error"):
                value = data.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()[:1000]
                if isinstance(value, dict):
                    for inner in ("message", "error_msg", "detail"):
                        if isinstance(value.get(inner), str) and value[inner].strip():
                            return value[inner].strip()[:1000]
        kind = reply.kind
        if kind == "html":
            summary = html_summary(reply.body)
            return f"HTML page: {summary}" if summary else "an HTML page instead of an API answer"
        if kind == "empty":
            return f"HTTP {reply.status} with an empty body"
        if kind == "text":
            return first_line(reply.text)
        if reply.parse_error:
            return reply.parse_error
        return f"HTTP {reply.status}"

    def parse_error(self, reply: Reply) -> ErrorInfo:
        """(code, message, vendor request id, details) of an answer that is not a success."""
        code = status_code_name(reply.status) if not 200 <= reply.status < 300 else "vendor_error"
        details: dict = {}
        if reply.parse_error:
            details["parse_error"] = reply.parse_error
        return ErrorInfo(code=code, message=self.error_message(reply), request_id=self.request_id(reply),
                         details=details)

    def is_auth_failure(self, status: int | None, error: ErrorInfo) -> bool:
        """Did the vendor reject the credential? (Pauses scheduled tests: accounts lock.)"""
        return status == 401

    def rejects_secret(self, status: int | None, error: ErrorInfo) -> bool:
        """Does this answer say the secret itself is invalid or rescinded? A request in flight
        while a rotation finished is then retried once with the new secret (outbound/client.py), and a
        probe after a refresh reads it as "rejected" (rotation/refresh.py)."""
        return status == 401

    # -- rate limits, blocks and retries ---------------------------------------------
    def rate_limit(self, reply: Reply, now: float) -> RateLimitInfo:
        h = reply.headers
        reset = header_int(h.get("X-RateLimit-Reset"))
        if reset is not None and reset < 10**9:  # some vendors send seconds-until-reset
            reset = int(now) + reset
        return RateLimitInfo(
            limit=header_int(h.get("X-RateLimit-Limit")),
            remaining=header_int(h.get("X-RateLimit-Remaining")),
            reset_at=float(reset) if reset is not None else None,
            bucket=(h.get("X-RateLimit-Bucket") or "")[:100],
            retry_after=parse_retry_after(h.get("Retry-After"), now),
        )

    def wait_for_rate_limit(self, rate: RateLimitInfo, now: float) -> float | None:
        """How long the vendor asked us to wait: Retry-After, else until X-RateLimit-Reset."""
        if rate.retry_after is not None:
            return rate.retry_after
        if rate.reset_at is not None:
            return max(0.0, rate.reset_at - now) + self.retry_policy.reset_skew
        return None

    def block_until(self, status: int | None, rate: RateLimitInfo, now: float) -> float | None:
        """Unix time before which nothing more may be sent in this provider's block scope."""
        if status == 429:
            wait = self.wait_for_rate_limit(rate, now)
            return now + wait if wait else None
        if rate.remaining == 0 and rate.reset_at is not None and rate.reset_at > now - 1:
            return rate.reset_at + self.retry_policy.reset_skew
        return None

    def backoff(self, retry_number: int) -> float:
        """Seconds before retry n (1-based): base, 2 x base, 4 x base, ... capped, with jitter."""
        p = self.retry_policy
        step = min(p.backoff_cap, p.backoff_base * 2 ** (retry_number - 1))
        return step * (0.5 + random.random() / 2) if p.jitter else step

    def retry_delay(self, attempt: Attempt, now: float | None = None) -> float | None:
        """Seconds to wait before trying again, or None to stop."""
        now = time.time() if now is None else now
        p = self.retry_policy
        if attempt.number >= p.max_attempts:
            return None
        status = attempt.status
        if status == 401:
            return None  # never: vendors lock accounts after 3 to 5 failures (VENDORS.md edge case 7)
        if status is None:
            if attempt.outcome == "throttled" or not p.retry_network:
                return None
            if attempt.maybe_delivered and not attempt.idempotent:
                return None  # the vendor may have acted on it: never repeat a non-idempotent call blindly
            return self.backoff(attempt.number)
        if status == 429:
            if not p.retry_429:
                return None
            wait = self.wait_for_rate_limit(attempt.rate, now)
            return wait if wait is not None else self.backoff(attempt.number)
        if status in p.retry_statuses and attempt.idempotent:
            if attempt.rate.retry_after is not None:
                return attempt.rate.retry_after
            return self.backoff(attempt.number)
        return None

    def throttle_plan(self, *, connection_id: int, fingerprint: str) -> ThrottlePlan:
        """Rules the shared limiter enforces before each attempt; by default none, and a block
        (from Retry-After) that applies to this connection only."""
        return ThrottlePlan(rules=(), block_scope=f"{self.key}:connection:{connection_id}")
