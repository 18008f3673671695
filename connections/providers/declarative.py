"""Vendors from YAML files: a Provider built from a checked Definition (vendor_files.py).

Everything a built-in vendor gets comes from the Provider base and the client: tests, log rows
with parsed errors, headroom, throttling with the vendor's scope, alerts, staged rotation. This
class only answers the hooks from data: where the secret goes (auth scheme), which hosts it may
go to, the test requests, the error envelope (JSON pointers), the rate-limit headers and limits,
and the retry rules. The OAuth 2.0 schemes add the generic oauth2 provider's token mechanics
(declarative_oauth2.py).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from .base import Provider
from .http import (
    ErrorInfo,
    Outbound,
    RateLimitInfo,
    Reply,
    RequestSpec,
    RetryPolicy,
    Rule,
    TestStep,
    ThrottlePlan,
    basic_token,
    header_int,
    parse_retry_after,
)
from .schema import Field
from .vendor_files import Definition, host_allowed

LOOPBACK = ("127.0.0.1", "::1", "localhost")
_MISSING = object()


def pointer_get(data: Any, pointer: str) -> Any:
    """The value at an RFC 6901 JSON pointer, or _MISSING."""
    if pointer == "":
        return data
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _first_text(data: Any, pointers: tuple[str, ...], limit: int = 1000) -> str:
    for p in pointers:
        value = pointer_get(data, p)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:limit]
    return ""


class DeclarativeProvider(Provider):
    """One instance per definition file; `source` is the file it came from."""

    def __init__(self, definition: Definition, source: str = ""):
        d = self.definition = definition
        self.source = source
        self.key, self.label, self.docs = d.key, d.name, d.docs or source
        self.default_base_url = d.default_base_url
        self.expected_types = d.expect
        self.credential_fields = _credential_fields(d)
        self.rate_limit_note = d.rate_limit.note  # shown beside the limit in force (headroom)
        self.test_proves = "; ".join(f"{t.method} {t.path}: {t.proves}" for t in d.tests)
        r = d.retry
        self.retry_policy = RetryPolicy(max_attempts=r.max_attempts, retry_statuses=frozenset(r.statuses),
                                        backoff_base=r.backoff_base, backoff_cap=r.backoff_cap, jitter=r.jitter,
                                        retry_network=r.network, retry_429=r.on_rate_limit)

    # -- schema -------------------------------------------------------------
    def clean_secret(self, data: object) -> dict:
        cleaned = super().clean_secret(data)
        return {k: v for k, v in cleaned.items() if v != ""}

    def hosts(self) -> tuple[str, ...]:
        if getattr(settings, "OUTBOUND_ALLOW_PRIVATE_NETWORKS", False):
            # The demo and the tests: the sandbox twins listen on loopback.
            return (*self.definition.allowed_hosts, *LOOPBACK)
        return self.definition.allowed_hosts

    def _check_host(self, url: str) -> str:
        host = (urlsplit(url).hostname or "").lower()
        if not host_allowed(host, self.hosts()):
            return (f"{host or 'this URL'} is not one of the hosts {self.label} secrets may be sent to "
                    f"({', '.join(self.definition.allowed_hosts)}; allowed_hosts in {self.source or 'its definition'})")
        return ""

    def clean_base_url(self, base_url: str) -> str:
        cleaned = super().clean_base_url(base_url)
        problem = self._check_host(cleaned)
        if problem:
            raise ValidationError({"base_url": problem})
        return cleaned

    def describe_test(self, options: dict) -> str:
        return self.test_proves

    def describe_limits(self) -> str:
        rl = self.definition.rate_limit
        parts = []
        if rl.per_second:
            parts.append(f"{rl.per_second} requests/s")
        if rl.per_minute:
            parts.append(f"{rl.per_minute} per minute")
        if rl.per_hour:
            parts.append(f"{rl.per_hour:,} per hour")
        if rl.concurrency:
            parts.append(f"at most {rl.concurrency} in flight")
        if not parts:
            text = "No rate limit in its definition"
        else:
            whose = "per token" if rl.scope == "token" else "per egress IP, shared by all its connections"
            text = ", ".join(parts) + f" ({whose})"
        waits = " or ".join(str(s) for s in rl.limited_statuses)
        r = self.definition.retry
        return (f"{text}. A {waits} waits for Retry-After or {rl.reset_header} when sent, else backs off from "
                f"{r.backoff_base:g} s, at most {r.max_attempts} tries." + (f" {rl.note}" if rl.note else ""))

    # -- addressing ---------------------------------------------------------
    def url_for(self, base_url: str, path: str) -> str:
        url = super().url_for(base_url, path)
        problem = self._check_host(url)
        if problem:
            raise ValueError(problem)  # the client records it and sends nothing
        return url

    # -- authentication -------------------------------------------------------
    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        d = self.definition
        for name, value in d.headers:
            request.headers.setdefault(name, value)
        request.headers.setdefault("Accept", d.expect[0] if d.expect and "*" not in d.expect[0] else "*/*")
        a = d.auth
        if request.auth == "none":
            return
        if a.scheme == "basic":
            request.headers["Authorization"] = "Basic " + basic_token(secret["username"], secret.get("password", ""))
        elif a.scheme == "bearer":
            request.headers[a.header] = f"{a.prefix} {secret['token']}".strip()
        elif a.scheme == "api_key":
            value = f"{a.prefix} {secret['api_key']}".strip()
            if a.param_in == "query":
                request.params[a.param_name] = value  # redacted in logs: every secret value is masked
            else:
                request.headers[a.param_name] = value

    def composite_values(self, secret: dict) -> list[str]:
        if self.definition.auth.scheme == "basic" and secret.get("username"):
            return [f"{secret['username']}:{secret.get('password', '')}"]
        if self.definition.auth.scheme.startswith("oauth2") and secret.get("client_id"):
            return [f"{secret['client_id']}:{secret.get('client_secret', '')}"]
        return []

    # -- the connection test ------------------------------------------------------
    def _spec(self, i: int) -> RequestSpec:
        t = self.definition.tests[i]
        return RequestSpec(t.method, t.path, params=dict(t.params) or None, json=t.json)

    def test_requests(self, options: dict) -> list[TestStep]:
        # Each request proves one thing; the first that fails is the test's answer.
        return [TestStep(self._spec(i), t.proves) for i, t in enumerate(self.definition.tests)]

    def probe_request(self, secret: dict, options: dict) -> RequestSpec | None:
        return self._spec(0)

    # -- answers -----------------------------------------------------------------
    def is_auth_failure(self, status: int | None, error: ErrorInfo) -> bool:
        return status in self.definition.auth_failure_statuses

    def rejects_secret(self, status: int | None, error: ErrorInfo) -> bool:
        return status in self.definition.auth_failure_statuses

    def request_id(self, reply: Reply) -> str:
        e = self.definition.errors
        for name in e.request_id_headers:
            value = reply.headers.get(name)
            if value:
                return value[:200]
        found = _first_text(reply.data, e.request_id, 200) if e.request_id else ""
        return found or super().request_id(reply)

    def parse_error(self, reply: Reply) -> ErrorInfo:
        info = super().parse_error(reply)
        e, data = self.definition.errors, reply.data
        if data is not None:
            code = _first_text(data, e.code, 100)
            if code:
                info.code = code
            message = _first_text(data, e.message)
            if message:
                info.message = message
            for name, pointer in e.details:
                value = pointer_get(data, pointer)
                if value is not _MISSING and value is not None:
                    info.details[name] = value if isinstance(value, str | int | float | bool) else str(value)[:500]
        header = self.definition.retry.should_retry_header
        if header and reply.headers.get(header):
            info.details["should_retry"] = reply.headers[header][:10]
        if self._rate_limited(reply.status, self.rate_limit(reply, time.time())) and reply.status != 429:
            info.details.setdefault("rate_limited", True)
            info.code = info.code if info.code not in ("forbidden", f"http_{reply.status}") else "rate_limited"
        return info

    # -- rate limits, blocks and retries ---------------------------------------------
    def rate_limit(self, reply: Reply, now: float) -> RateLimitInfo:
        rl, h = self.definition.rate_limit, reply.headers
        reset = header_int(h.get(rl.reset_header))
        if reset is not None and (rl.reset_format == "seconds" or (rl.reset_format == "auto" and reset < 10**9)):
            reset = int(now) + reset
        return RateLimitInfo(
            limit=header_int(h.get(rl.limit_header)), remaining=header_int(h.get(rl.remaining_header)),
            reset_at=float(reset) if reset is not None else None,
            bucket=(h.get(rl.bucket_header) or "")[:100] if rl.bucket_header else "",
            retry_after=parse_retry_after(h.get("Retry-After"), now),
        )

    def _rate_limited(self, status: int | None, rate: RateLimitInfo) -> bool:
        """429; or another status the definition names (GitHub: 403) with Retry-After or none left."""
        if status == 429:
            return True
        return status in self.definition.rate_limit.limited_statuses and (
            rate.retry_after is not None or rate.remaining == 0)

    def block_until(self, status: int | None, rate: RateLimitInfo, now: float) -> float | None:
        if self._rate_limited(status, rate) and status != 429:
            wait = self.wait_for_rate_limit(rate, now)
            return now + wait if wait else None
        return super().block_until(status, rate, now)

    def retry_delay(self, attempt, now: float | None = None) -> float | None:
        now = time.time() if now is None else now
        r = self.definition.retry
        if attempt.number >= r.max_attempts or attempt.status in self.definition.auth_failure_statuses:
            return None
        if attempt.status is not None and r.should_retry_header:
            said = (attempt.error.details.get("should_retry") or "").lower()
            if said == "false":
                return None  # the vendor says this request must not be repeated
        if self._rate_limited(attempt.status, attempt.rate) and attempt.status != 429:
            if not r.on_rate_limit:
                return None
            wait = self.wait_for_rate_limit(attempt.rate, now)
            return wait if wait is not None else self.backoff(attempt.number)
        if attempt.status is not None and attempt.error.code in r.error_codes and attempt.idempotent \
                and attempt.status != 429:
            return self.backoff(attempt.number)
        return super().retry_delay(attempt, now)

    def throttle_plan(self, *, connection_id: int, fingerprint: str) -> ThrottlePlan:
        rl = self.definition.rate_limit
        if rl.scope == "egress_ip":
            scope = f"{self.key}:egress:{settings.OUTBOUND_EGRESS_ID}"  # every connection shares it
        else:
            scope = f"{self.key}:token:{fingerprint}"  # never the secret itself
        rules = []
        if rl.concurrency:
            rules.append(Rule("concurrency", scope, rl.concurrency))
        if rl.per_second:
            rules.append(Rule("pace", scope, rl.per_second, 1.0))
        if rl.per_minute:
            rules.append(Rule("window", scope, rl.per_minute, 60.0))
        elif rl.per_hour:
            rules.append(Rule("window", scope, rl.per_hour, 3600.0))
        return ThrottlePlan(rules=tuple(rules), block_scope=scope)


def _credential_fields(d: Definition) -> tuple[Field, ...]:
    a = d.auth
    if a.scheme == "basic":
        return (Field("username", a.username_label, secret=a.username_secret, help=a.help),
                Field("password", a.password_label, secret=True, required=a.password_required))
    if a.scheme == "bearer":
        return (Field("token", a.label or "Token", secret=True, help=a.help),)
    if a.scheme == "api_key":
        return (Field("api_key", a.label or "API key", secret=True, help=a.help),)
    fields = (Field("client_id", "Client id", help=a.help or "The client id registered at the authorization server."),
              Field("client_secret", "Client secret", secret=True))
    if a.scheme == "oauth2_refresh":
        fields += (Field("refresh_token", "Refresh token", secret=True, required=False,
                         help="Paste one, or leave empty and press Connect after saving (authorization code + PKCE)."),)
    return fields


def build(definition: Definition, source: str = "") -> Provider:
    """The provider of a definition: OAuth 2.0 schemes run on the oauth2 provider's mechanics."""
    if definition.auth.scheme.startswith("oauth2"):
        from .declarative_oauth2 import DeclarativeOAuth2

        return DeclarativeOAuth2(definition, source)
    return DeclarativeProvider(definition, source)
