"""CloverDX Server REST API (shared/VENDORS.md, "CloverDX Server").

HTTP Basic plus an X-Requested-By header (CSRF) on every request.
"""

from __future__ import annotations

import re

from .base import Provider
from .http import ErrorInfo, Outbound, Reply, RequestSpec, RetryPolicy, TestStep, basic_token
from .schema import Field

REST_PREFIX = "/clover/api/rest/v1"
ACCESSIBILITY_PATH = "/clover/accessibilityTest.jsp"
_SUFFIX = re.compile(r"(/clover(/api(/rest(/v1)?)?)?)$")


class CloverDX(Provider):
    key = "cloverdx"
    label = "CloverDX Server"
    docs = "shared/VENDORS.md#cloverdx-server — https://doc.cloverdx.com (REST API chapter)"
    default_base_url = "https://cloverdx.example.com:8083"
    credential_fields = (
        Field("username", "User name"),
        Field("password", "Password", secret=True),
    )
    option_fields = (
        Field("test_path", "Test path", required=False, default="/clover/api/rest/v1/executions?pageSize=1",
              help="A cheap authenticated GET the user has permission for."),
        Field("requested_by", "X-Requested-By value", required=False, default="switchboard",
              help="CloverDX refuses REST calls without this header; any value works."),
    )
    test_proves = "An authenticated GET of the test path: the server is up, not suspended, and the user may read it."
    # VENDORS.md: nothing documented; 5xx and network errors back off with jitter, 5 tries. The
    # 503 of a suspended server is a state, not a glitch (see retry_delay). 401 never: the user
    # locks after 5 failed logins in 300 s.
    retry_policy = RetryPolicy(max_attempts=5)

    def api_root(self, base_url: str) -> str:
        # The base may be https://host:port, .../clover or .../clover/api/rest/v1.
        return _SUFFIX.sub("", base_url.strip().rstrip("/"))

    def url_for(self, base_url: str, path: str) -> str:
        super().url_for(base_url, path)  # refuses absolute URLs
        path = "/" + path.lstrip("/")
        if not path.startswith("/clover/"):
            path = REST_PREFIX + path  # a bare resource ("/executions") lives under the REST prefix
        return self.api_root(base_url) + path

    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        # VENDORS.md: every request must carry X-Requested-By (any value), or it is refused.
        request.headers["X-Requested-By"] = (options or {}).get("requested_by") or "switchboard"
        request.headers.setdefault("Accept", "application/json")
        if request.auth != "none":
            request.headers["Authorization"] = "Basic " + basic_token(secret["username"], secret["password"])

    def test_requests(self, options: dict) -> list[TestStep]:
        # Tell "suspended" from "down" first (no credential involved, so no lockout risk), then
        # the authenticated GET that proves the user may read the test path. VENDORS.md: GET
        # /clover/accessibilityTest.jsp (no auth) answers 200, or 503 SUSPENDED. Suspended or
        # unreachable ends the test there: the authenticated GET would prove nothing more.
        accessibility = RequestSpec("GET", ACCESSIBILITY_PATH, auth="none", expect=("*",))
        path = (options or {}).get("test_path") or f"{REST_PREFIX}/executions?pageSize=1"
        return [TestStep(accessibility, "the server answers and is not suspended",
                         stops_on=("suspended", "network_error", "timeout")),
                TestStep(RequestSpec("GET", path), self.test_proves)]

    @staticmethod
    def is_suspended(reply: Reply) -> bool:
        return reply.status == 503 and "SUSPENDED" in reply.text[:2000]

    def parse_error(self, reply: Reply) -> ErrorInfo:
        info = super().parse_error(reply)
        if self.is_suspended(reply):
            # VENDORS.md edge case 8: a suspended server is a state of its own, not "down".
            info.code = "suspended"
            info.message = "The CloverDX server is suspended (503 SUSPENDED); it is up but not running jobs or REST calls."
        elif isinstance(reply.data, dict) and isinstance(reply.data.get("error"), str) and reply.data.get("message"):
            info.details["error"] = reply.data["error"]
        return info

    def retry_delay(self, attempt, now=None):
        if attempt.error.code == "suspended":
            return None  # suspended stays suspended until an operator resumes the server
        return super().retry_delay(attempt, now)
