"""Clever education data API (shared/VENDORS.md, "Clever").

Bearer token; X-RateLimit-* headers; 1200 requests per minute per token.
"""

from __future__ import annotations

import re

from django.conf import settings

from .base import Provider
from .http import Outbound, RequestSpec, RetryPolicy, Rule, TestStep, ThrottlePlan
from .schema import Field

_VERSION_SUFFIX = re.compile(r"/v\d+(\.\d+)?$")
_VERSIONED_PATH = re.compile(r"^/v\d+(\.\d+)?(/|$)")


class Clever(Provider):
    key = "clever"
    label = "Clever"
    docs = "shared/VENDORS.md#clever — https://dev.clever.com/docs/rate-limiting"
    default_base_url = "https://api.clever.com"
    credential_fields = (
        Field("token", "Bearer token", secret=True, help="A district-app token (or an instant-login token)."),
    )
    option_fields = (
        Field("test_path", "Test path", required=False, default="/v3.0/districts",
              help="/v3.0/districts for district tokens, /v3.0/me for instant-login (SSO) tokens."),
    )
    test_proves = "GET /v3.0/districts: the token is valid and reaches its own district (not that Secure Sync shares data)."
    # VENDORS.md status handling: 500/502/503 wait and retry, 429 retry after X-RateLimit-Reset;
    # 400, 401, 404, 413, 501 never. Backoff 1 s, 2 s, 4 s, ...; after five retries stop.
    retry_policy = RetryPolicy(max_attempts=6, retry_statuses=frozenset({500, 502, 503}), backoff_base=1.0,
                               backoff_cap=16.0, jitter=False, reset_skew=1.0)

    def describe_test(self, options: dict) -> str:
        path = (options or {}).get("test_path") or "/v3.0/districts"
        if path.rstrip("/").endswith("/me"):
            return f"GET {path}: the token is valid (an instant-login token reaches only /me, its district and user)."
        if path.rstrip("/").endswith("/districts"):
            return self.test_proves
        return f"GET {path}: the token is valid and may read {path}."

    def describe_limits(self) -> str:
        return (f"{settings.CLEVER_RATE_LIMIT_PER_MINUTE} requests per minute per bearer token, a fixed window "
                "(CLEVER_RATE_LIMIT_PER_MINUTE); a 429 waits for X-RateLimit-Reset.")

    def api_root(self, base_url: str) -> str:
        # The base may be given with or without the version (https://api.clever.com/v3.0).
        return _VERSION_SUFFIX.sub("", base_url.strip().rstrip("/"))

    def url_for(self, base_url: str, path: str) -> str:
        super().url_for(base_url, path)  # refuses absolute URLs
        base = base_url.strip().rstrip("/")
        root = self.api_root(base)
        path = "/" + path.lstrip("/")
        if _VERSIONED_PATH.match(path):
            return root + path
        version = base[len(root):] or "/v3.0"
        return root + version + path

    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        request.headers.setdefault("Accept", "application/json")
        if request.auth != "none":
            request.headers["Authorization"] = f"Bearer {secret['token']}"  # VENDORS.md: Bearer <token>

    def test_requests(self, options: dict) -> list[TestStep]:
        # VENDORS.md: GET /v3.0/districts (district tokens) or /v3.0/me (SSO): a connection option.
        spec = RequestSpec("GET", (options or {}).get("test_path") or "/v3.0/districts")
        return [TestStep(spec, self.describe_test(options))]

    def throttle_plan(self, *, connection_id: int, fingerprint: str) -> ThrottlePlan:
        # VENDORS.md: 1200 requests per minute per bearer token, a fixed window that resets every
        # minute. The scope is the credential's fingerprint (never the token itself).
        scope = f"clever:token:{fingerprint}"
        return ThrottlePlan(rules=(Rule("window", scope, settings.CLEVER_RATE_LIMIT_PER_MINUTE, 60.0),),
                            block_scope=scope)
