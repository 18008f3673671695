"""Cleverbridge twin (shared/VENDORS.md, "Cleverbridge back-end REST APIs").

HTTP Basic; Accept (application/json or application/xml) required on every call; every answer
carries ResultMessage (blank on success); 150 requests/s per client IP, then 429 text/html with
Retry-After and a block; at most 4 concurrent requests; a user is locked after 3 failed logins.

Order of checks (the sheet is silent; chosen so a misconfigured client burns no login attempt):
IP block / rate limit -> concurrency -> Accept -> credentials -> route.
"""

from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET

from ..base import Vendor, require_strings
from ..credentials import DEMO_CREDENTIALS
from ..messages import BadBody, Request, Response, new_secret

DEMO_SUBSCRIPTION_ID = "S94817263"
_SUBSCRIPTIONS = {
    DEMO_SUBSCRIPTION_ID: {"SubscriptionId": DEMO_SUBSCRIPTION_ID, "Status": "Active",
                           "ProductName": "Switchboard Pro", "Quantity": 5, "NextBillingDate": "2026-01-01"},
}
_FORMATS = {"application/json": "json", "application/xml": "xml"}
_TARGET_PAGES = {"Subscription", "Invoices", "PaymentDetails"}
_SESSION_FIELDS = {"SubscriptionId", "TargetPage", "Language"}


def negotiate(accept: str) -> str | None:
    """"json" or "xml" from an Accept header; None when it names neither (*/* does not count)."""
    for part in accept.split(","):
        fmt = _FORMATS.get(part.split(";")[0].strip().lower())
        if fmt:
            return fmt
    return None


def to_xml(root: str, obj) -> bytes:
    """<Result><ResultMessage/>...</Result> style: dict keys become elements."""

    def fill(element: ET.Element, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                fill(ET.SubElement(element, key), item)
        elif isinstance(value, list):
            for item in value:
                fill(ET.SubElement(element, "Item"), item)
        elif value not in (None, ""):
            element.text = str(value).lower() if isinstance(value, bool) else str(value)

    element = ET.Element(root)
    fill(element, obj)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def from_xml(body: bytes) -> dict:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadBody(f"body is not valid XML: {exc}") from None
    return {child.tag: (child.text or "") for child in root}


class Cleverbridge(Vendor):
    name = "cleverbridge"
    routes = (
        ("GET", r"/connection/test", "connection_test"),
        ("GET", r"/subscription/getsubscription", "get_subscription"),
        ("POST", r"/urlgenerator/generateusersessionurl", "generate_user_session_url"),
    )
    settings = ("rate_limit_per_second", "block_seconds", "max_concurrent", "lockout_after")

    rate_limit_per_second = 150  # [doc] 150/s per IPv4 address (another page says 30/s)
    block_seconds = 60  # [doc] Retry-After: 60, the block lasts a minute
    max_concurrent = 4  # [doc] best practice: at most 4 concurrent requests
    lockout_after = 3  # [pub] technical users are locked out after three failed logins

    def reset_state(self) -> None:
        demo = DEMO_CREDENTIALS["cleverbridge"]
        self.users = {demo["username"]: demo["password"]}
        self.failures: dict[str, int] = {}
        self.locked: set[str] = set()
        self.blocked: dict[str, float] = {}  # client IP -> monotonic time the block ends
        self.concurrency_violations = 0

    # ----- envelope ---------------------------------------------------------------------

    def reply(self, req: Request, status: int, payload: dict, headers: dict | None = None) -> Response:
        """JSON or XML as the Accept header asked; JSON when it asked for neither."""
        payload = {"ResultMessage": "", **payload}
        if req.ctx.get("fmt") == "xml":
            return Response(status, to_xml("Result", payload),
                            {"Content-Type": "application/xml; charset=utf-8", **(headers or {})})
        return Response.json(status, payload, headers)

    def error(self, req: Request, status: int, message: str, **extra) -> Response:
        return self.reply(req, status, {"ResultMessage": message, **extra})

    def not_found(self, req: Request) -> Response:
        return self.error(req, 404, "The requested resource does not exist.")

    def too_many(self, retry_after: float) -> Response:
        # [doc] 429 is text/html with Retry-After (VENDORS.md edge cases 2 and 4).
        return Response.html(429, "429 Too Many Requests",
                             "Rate limit exceeded. Slow down and retry later.",
                             {"Retry-After": str(max(1, math.ceil(retry_after)))})

    # ----- the gate -------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        now = time.monotonic()
        ip = req.client_ip
        if self.blocked.get(ip, 0) > now:
            return self.too_many(self.blocked[ip] - now)  # Retry-After: what is left of the block
        if req.per_second > self.rate_limit_per_second:
            self.blocked[ip] = now + self.block_seconds
            return self.too_many(self.block_seconds)
        if req.in_flight > self.max_concurrent:
            # Not a block: only this request is refused; Retry-After: 1.
            self.concurrency_violations += 1
            return self.too_many(1)
        req.ctx["fmt"] = negotiate(req.header("Accept") or "")
        if req.ctx["fmt"] is None:
            # [doc] Accept is required on every call; answered in JSON as nothing else was asked.
            return self.error(req, 400, "The Accept header is required and must be "
                                        "application/json or application/xml.")
        return self.authenticate(req) or self.route(req)

    def authenticate(self, req: Request) -> Response | None:
        pair = req.basic_auth()
        if pair is not None:
            user, password = pair
            if user not in self.locked and self.users.get(user) == password:
                self.failures.pop(user, None)  # failures must be consecutive
                return None
            if user not in self.locked:
                self.failures[user] = self.failures.get(user, 0) + 1
                if self.failures[user] >= self.lockout_after:
                    self.locked.add(user)
        # Locked users get the same answer as a wrong password (a real API would not say).
        resp = self.error(req, 401, "Authentication failed.")
        resp.headers["WWW-Authenticate"] = 'Basic realm="Cleverbridge"'
        return resp

    # ----- endpoints ------------------------------------------------------------------

    def connection_test(self, req: Request) -> Response:
        # [doc] the success body is undocumented; we send a blank ResultMessage.
        return self.reply(req, 200, {})

    def get_subscription(self, req: Request) -> Response:
        subscription_id = req.arg("SubscriptionId")
        if not subscription_id:
            return self.error(req, 400, "SubscriptionId is required.")
        if subscription_id not in _SUBSCRIPTIONS:
            return self.error(req, 404, "Item not found.")  # [doc] the example ResultMessage
        return self.reply(req, 200, {"Subscription": _SUBSCRIPTIONS[subscription_id]})

    def generate_user_session_url(self, req: Request) -> Response:
        if not req.content_type:
            return self.error(req, 400, "The Content-Type header is required.")  # [doc] on POST
        parsers = {"application/json": Request.json, "application/xml": lambda r: from_xml(r.body)}
        if req.content_type not in parsers:
            return self.error(req, 400, "Content-Type must be application/json or application/xml.")
        try:
            fields = parsers[req.content_type](req)
        except BadBody as exc:
            return self.error(req, 400, f"The request body could not be read: {exc}.")
        if not isinstance(fields, dict):
            return self.error(req, 400, "The request body must be an object.")
        if not fields.get("SubscriptionId"):
            return self.error(req, 400, "SubscriptionId is required.")  # [doc] 400 missing fields
        problem = self._invalid_session_fields(fields)
        if problem:
            return self.error(req, 402, f"Invalid parameters: {problem}")  # [doc] 402
        if fields["SubscriptionId"] not in _SUBSCRIPTIONS:
            return self.error(req, 404, "Item not found.")
        page = fields.get("TargetPage", "Subscription")
        url = f"https://sandbox.cleverbridge.invalid/session/{new_secret(nbytes=12)}?page={page}"
        return self.reply(req, 200, {"Url": url})

    @staticmethod
    def _invalid_session_fields(fields: dict) -> str:
        unknown = sorted(set(fields) - _SESSION_FIELDS)
        if unknown:
            return f"unknown field(s) {', '.join(unknown)}."
        if not all(isinstance(value, str) for value in fields.values()):
            return "every field must be a string."
        if fields.get("TargetPage", "Subscription") not in _TARGET_PAGES:
            return f"TargetPage must be one of {', '.join(sorted(_TARGET_PAGES))}."
        if not re.fullmatch(r"[a-z]{2}", fields.get("Language", "en")):
            return "Language must be a two-letter code such as en."
        return ""

    # ----- control --------------------------------------------------------------------

    def add_credentials(self, data: dict) -> None:
        """{"username", "password"}: adds or replaces the user and unlocks it (an admin reset)."""
        username, password = require_strings(data, "username", "password")
        with self.lock:
            self.users[username] = password
            self.failures.pop(username, None)
            self.locked.discard(username)

    def extra_stats(self) -> dict:
        now = time.monotonic()
        return {
            "concurrency_violations": self.concurrency_violations,
            "blocked_ips": {ip: round(end - now, 3) for ip, end in self.blocked.items() if end > now},
            "locked_users": sorted(self.locked),
            "failed_logins": dict(self.failures),
        }
