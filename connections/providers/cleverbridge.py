"""Cleverbridge back-end REST APIs (shared/VENDORS.md, "Cleverbridge").

HTTP Basic with an "API User"; Accept (json or xml) on every call; GET /connection/test.
"""

from __future__ import annotations

from django.conf import settings

from .base import Provider
from .http import (
    JSON,
    XML,
    ErrorInfo,
    Outbound,
    Reply,
    RequestSpec,
    RetryPolicy,
    Rule,
    TestStep,
    ThrottlePlan,
    basic_token,
    status_code_name,
)
from .schema import Field

# VENDORS.md: at most 4 concurrent requests across all processes and machines (best practice).
MAX_IN_FLIGHT = 4
FORMATS = {"json": JSON, "xml": XML}


class Cleverbridge(Provider):
    key = "cleverbridge"
    label = "Cleverbridge"
    docs = "shared/VENDORS.md#cleverbridge — https://rest.cleverbridge.com"
    default_base_url = "https://rest.cleverbridge.com"
    credential_fields = (
        Field("username", "API user name", help="A Cleverbridge user with the \"API User\" privilege."),
        Field("password", "Password", secret=True),
    )
    option_fields = (
        Field("accept_format", "Response format", required=False, choices=("json", "xml"), default="json",
              help="Sent as the Accept header on every call; both are parsed."),
    )
    test_proves = "GET /connection/test: the API is reachable and the user name and password are accepted."
    # VENDORS.md: 429 -> honour Retry-After (60 s: the caller stops and records the block);
    # 5xx a few times. 401 never (technical users lock after three failed logins).
    retry_policy = RetryPolicy(max_attempts=3, retry_statuses=frozenset({500, 502, 503, 504}))
    # Shown beside the limit in force on the headroom card (VENDORS.md: two figures published).
    rate_limit_note = "CLEVERBRIDGE_RATE_LIMIT; the getting-started page says 150/s, the rate-limits page 30/s"

    def describe_limits(self) -> str:
        # VENDORS.md: 150/s on the getting-started page, 30/s on the rate-limits page.
        return (f"{settings.CLEVERBRIDGE_RATE_LIMIT} requests/s per egress IP (CLEVERBRIDGE_RATE_LIMIT; the "
                "getting-started page says 150, the rate-limits page 30), shared by every Cleverbridge "
                f"connection; at most {MAX_IN_FLIGHT} in flight. Over it: 429 and a one-minute block.")

    def accepts(self, options: dict) -> tuple[str, ...]:
        return (FORMATS[(options or {}).get("accept_format") or "json"],)

    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        # VENDORS.md: Basic auth; Accept required on every call; Content-Type required on POST.
        accept = self.accepts(options)[0]
        request.headers["Accept"] = accept
        if request.auth != "none":
            request.headers["Authorization"] = "Basic " + basic_token(secret["username"], secret["password"])
        if request.method.upper() in ("POST", "PUT", "PATCH") and "Content-Type" not in request.headers:
            request.headers["Content-Type"] = XML if isinstance(request.data, str | bytes) and accept == XML else JSON

    def test_requests(self, options: dict) -> list[TestStep]:
        # VENDORS.md: GET /connection/test checks reachability and credentials; success body undocumented.
        return [TestStep(RequestSpec("GET", "/connection/test"), self.test_proves)]

    @staticmethod
    def result_message(reply: Reply) -> str:
        data = reply.data
        if isinstance(data, dict):
            message = data.get("ResultMessage")
            if message is None and len(data) == 1:  # XML: {"Result": {...}} when the root had children
                inner = next(iter(data.values()))
                message = inner.get("ResultMessage") if isinstance(inner, dict) else None
            return (message or "").strip() if isinstance(message, str) else ""
        return ""

    def is_success(self, reply: Reply) -> bool:
        # VENDORS.md: ResultMessage is blank on success; a non-blank one is an error even with 200.
        return 200 <= reply.status < 300 and not self.result_message(reply)

    def parse_error(self, reply: Reply) -> ErrorInfo:
        info = super().parse_error(reply)
        message = self.result_message(reply)
        if message:
            info.message = message
            info.details["ResultMessage"] = message
        if 200 <= reply.status < 300:
            info.code = "vendor_error"
        else:
            # VENDORS.md codes: 400 bad/missing fields, 401 auth failed, 402 invalid parameters, 404, 500.
            info.code = status_code_name(reply.status)
        return info

    def throttle_plan(self, *, connection_id: int, fingerprint: str) -> ThrottlePlan:
        # VENDORS.md: 150 req/s (a setting: another page says 30) per egress IP, so every
        # Cleverbridge connection of this deployment shares one budget; at most 4 in flight.
        scope = f"cleverbridge:egress:{settings.OUTBOUND_EGRESS_ID}"
        return ThrottlePlan(
            rules=(Rule("concurrency", scope, MAX_IN_FLIGHT),
                   Rule("pace", scope, settings.CLEVERBRIDGE_RATE_LIMIT, 1.0)),
            block_scope=scope,  # a 429 blocks the IP for a minute (Retry-After: 60)
            shared=True,
        )
