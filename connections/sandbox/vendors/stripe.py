"""Stripe API twin, for the declarative example vendors/stripe.yaml.

From https://docs.stripe.com/api and /rate-limits: a secret key as Bearer (or as the Basic user
name, empty password); a Request-Id header on every answer; errors {"error": {type, code,
message}}; over the rate limit (per account per second: 25 in test mode) a 429 with code
rate_limit and no Retry-After; a 429 with code lock_timeout when another request holds the
object; Stripe-Should-Retry says whether repeating a request is safe.
"""

from __future__ import annotations

import secrets
import time
from collections import deque

from ..base import Vendor, require_strings
from ..credentials import DEMO_CREDENTIALS
from ..faults import Fault, fault_response
from ..messages import Request, Response

BALANCE = {"object": "balance", "livemode": False,
           "available": [{"amount": 412_50, "currency": "usd", "source_types": {"card": 412_50}}],
           "pending": [{"amount": 18_00, "currency": "usd", "source_types": {"card": 18_00}}]}


def request_id() -> str:
    return "req_" + secrets.token_urlsafe(10).replace("-", "a").replace("_", "b")[:14]  # [doc] req_...


class Stripe(Vendor):
    name = "stripe"
    routes = (("GET", r"/v1/balance", "balance"),)
    extra_faults = frozenset({"lock_timeout", "api_error_no_retry"})
    settings = ("limit_per_second",)

    limit_per_second = 25  # [doc] test mode: 25 operations per second

    def reset_state(self) -> None:
        self.keys = {DEMO_CREDENTIALS["stripe"]["token"]}
        self.recent: dict[str, deque[float]] = {}

    def error(self, req: Request, status: int, message: str, *, type: str = "invalid_request_error",  # noqa: A002
              code: str = "", headers: dict | None = None) -> Response:
        body = {"type": type, "message": message}
        if code:
            body["code"] = code
        return Response.json(status, {"error": body}, headers)  # [doc] {"error": {type, code, message}}

    def handle(self, req: Request) -> Response:
        resp = self._answer_for(req)
        resp.headers.setdefault("Request-Id", request_id())  # [doc] on every answer
        return resp

    def _key(self, req: Request) -> str:
        scheme, value = req.authorization()
        if scheme == "bearer":
            return value
        basic = req.basic_auth()
        return basic[0] if basic else ""  # [doc] Basic: the key is the user name, no password

    def _answer_for(self, req: Request) -> Response:
        key = self._key(req)
        if key not in self.keys:
            shown = f"{key[:8]}{'*' * 12}{key[-4:]}" if len(key) > 12 else "(none)"
            return self.error(req, 401, f"Invalid API Key provided: {shown}")  # [doc] 401, masked key
        window = self.recent.setdefault(key, deque())
        now = time.monotonic()
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.limit_per_second:
            # [doc] 429 with code rate_limit; no Retry-After: back off exponentially.
            return self.error(req, 429, "Too many requests hit the API too quickly. We recommend an exponential "
                                        "backoff of your requests.", code="rate_limit")
        window.append(now)
        return self.route(req)

    def fault_response(self, fault: Fault, req: Request) -> Response:
        if fault.name == "lock_timeout":
            return self.error(req, 429, "This object cannot be accessed right now because another API request or "
                                        "Stripe process is currently accessing it.", code="lock_timeout",
                              headers={"Request-Id": request_id()})
        if fault.name == "api_error_no_retry":
            return self.error(req, 500, "An unknown error occurred.", type="api_error",
                              headers={"Request-Id": request_id(), "Stripe-Should-Retry": "false"})
        return fault_response(fault)

    def balance(self, req: Request) -> Response:
        return Response.json(200, BALANCE)

    def add_credentials(self, data: dict) -> None:
        (key,) = require_strings(data, "token")
        with self.lock:
            self.keys.add(key)
