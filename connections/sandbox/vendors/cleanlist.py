"""Cleanlist WS-API twin (shared/VENDORS.md, "Cleanlist WS-API").

Every call is POST /api/<service>/ with a JSON object body and "Authorization: Token <token>".
Answers are {"ok": true, "req_id", "result"} or {"ok": false, "req_id", "error": {"error_code",
"error_msg"}}, req_id on every one. POST /api/_refresh/ returns result.new_token and rescinds the
old token at once and for good.

Choices where the sheet is silent: pub_echo ignores the token entirely (a green pub_echo
proves nothing about the token); an invalid, missing or rescinded token gets 401
"invalid_token" (the setting rescinded_status makes it 403, as some Cleanlist deployments answer:
VENDORS.md says to treat 401 and 403 alike); checks run 405 -> 404 unknown service -> 401 token -> 403 service -> 400 body.
"""

from __future__ import annotations

import re

from ..base import TokenStore, Vendor, require_strings
from ..credentials import DEMO_CREDENTIALS
from ..messages import BadBody, Request, Response, new_secret

REFRESH_PATH = "/api/_refresh/"
_ERROR_CODES = {400: "invalid_input", 401: "invalid_token", 403: "service_not_permitted",
                404: "unknown_service", 405: "method_not_allowed"}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


class Cleanlist(Vendor):
    name = "cleanlist"
    refreshes = True
    extra_faults = frozenset({"drop_after_refresh", "garble_after_refresh"})
    routes = (("POST", r"/api/(?P<service>[A-Za-z0-9_]+)/", "service"),)  # [doc] every call is a POST
    settings = ("rescinded_status",)

    rescinded_status = 401  # [infer] undocumented: what a rescinded token gets (401 or 403)

    def reset_state(self) -> None:
        # The demo token may use email_verify but not phone_verify; pub_echo needs no token.
        self.tokens = TokenStore()
        self.tokens.add(DEMO_CREDENTIALS["cleanlist"]["token"], services={"email_verify"})

    # ----- envelope ---------------------------------------------------------------------

    def ok(self, result) -> Response:
        return Response.json(200, {"ok": True, "req_id": new_secret("req_", 8), "result": result})

    def error(self, req: Request, status: int, message: str, **extra) -> Response:
        code = extra.pop("code", None) or _ERROR_CODES.get(status, "error")
        return Response.json(status, {"ok": False, "req_id": new_secret("req_", 8),
                                      "error": {"error_code": code, "error_msg": message, **extra}})

    def not_found(self, req: Request) -> Response:
        return self.error(req, 404, f"Unknown service: {req.path}")  # [doc] 404 with a JSON error

    def is_refresh(self, req: Request) -> bool:
        return req.path == REFRESH_PATH

    # ----- the gate -------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        scheme, token = req.authorization()
        req.ctx["token"] = token if scheme == "token" else ""
        if req.ctx["token"] and self.tokens.is_rescinded(req.ctx["token"]):
            self.note_rescinded_use()  # counted on every service, pub_echo included
        return self.route(req)

    def service(self, req: Request, service: str) -> Response:
        resp = self._serve(req, service)
        if service == "_refresh":
            self.record_refresh(token_was_current="grant" in req.ctx, rotated=resp.status == 200)
        return resp

    def _serve(self, req: Request, service: str) -> Response:
        services = {"pub_echo": self.pub_echo, "email_verify": self.email_verify,
                    "phone_verify": self.phone_verify, "_refresh": self.refresh}
        run = services.get(service)
        if run is None:
            return self.not_found(req)
        if service != "pub_echo":  # [infer] the doc's pub_echo example sends no token
            grant = self.tokens.get(req.ctx["token"]) if req.ctx["token"] else None
            if grant is None:
                rescinded = bool(req.ctx["token"]) and self.tokens.is_rescinded(req.ctx["token"])
                status = int(self.rescinded_status) if rescinded else 401
                return self.error(req, status, "Invalid or rescinded token.",
                                  code="invalid_token" if status == 401 else "token_rescinded")
            req.ctx["grant"] = grant
            if service != "_refresh" and service not in grant["services"]:
                return self.error(req, 403, f"This token may not use {service}.")  # [doc] 403
        try:
            body = req.json()
        except BadBody as exc:
            return self.error(req, 400, f"The body must be a JSON object: {exc}", code="invalid_json")
        if not isinstance(body, dict):
            return self.error(req, 400, "The body must be a JSON object.", code="invalid_json")
        return run(req, body)

    # ----- services -------------------------------------------------------------------

    def pub_echo(self, req: Request, body: dict) -> Response:
        return self.ok(body)  # [doc] the object comes back under result

    def email_verify(self, req: Request, body: dict) -> Response:
        email = body.get("email")
        if not isinstance(email, str) or not email:
            return self.error(req, 400, "Field 'email' is required.")
        return self.ok({"email": email, "status": "valid" if _EMAIL.fullmatch(email) else "invalid",
                        "disposable": False})

    def phone_verify(self, req: Request, body: dict) -> Response:
        phone = body.get("phone")
        if not isinstance(phone, str) or not phone:
            return self.error(req, 400, "Field 'phone' is required.")
        return self.ok({"phone": phone, "status": "valid"})

    def refresh(self, req: Request, body: dict) -> Response:
        # [doc] the old token is rescinded immediately and irrevocably. The vendor lock is held,
        # so of two concurrent refreshes with one token exactly one wins; the other gets 401.
        new_token = self.tokens.issue(services=req.ctx["grant"]["services"])
        self.tokens.rescind(req.ctx["token"])
        return self.ok({"new_token": new_token})

    # ----- control --------------------------------------------------------------------

    def add_credentials(self, data: dict) -> None:
        """{"token", "services": [...] (default ["email_verify"])}: adds a live token."""
        (token,) = require_strings(data, "token")
        services = data.get("services", ["email_verify"])
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise ValueError("services must be a list of strings")
        with self.lock:
            self.tokens.add(token, services=set(services))

    def extra_stats(self) -> dict:
        return {"live_tokens": len(self.tokens.live)}
