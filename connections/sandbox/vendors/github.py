"""GitHub REST API twin, for the declarative example vendors/github.yaml.

From https://docs.github.com/en/rest: Bearer tokens; every answer carries X-GitHub-Request-Id
and X-RateLimit-Limit/-Remaining/-Reset/-Used/-Resource; errors are {message, documentation_url};
over the primary limit (per token per hour) GitHub answers 403 (or 429) with
X-RateLimit-Remaining: 0; a secondary limit answers 403 with Retry-After. GET /rate_limit does
not count against the limit.
"""

from __future__ import annotations

import secrets

from ..base import Vendor, require_strings
from ..credentials import DEMO_CREDENTIALS
from ..faults import Fault, fault_response
from ..messages import Request, Response

DOCS = "https://docs.github.com/rest"
USER = {"login": "switchboard-demo", "id": 583231, "type": "User", "name": "Switchboard Demo",
        "html_url": "https://github.com/switchboard-demo"}


def request_id() -> str:
    # [doc] X-GitHub-Request-Id looks like CE3A:1F2B:3C4D5E:6F7A8B:65A1B2C3
    return ":".join(secrets.token_hex(n).upper() for n in (2, 2, 3, 3, 4))


class GitHub(Vendor):
    name = "github"
    routes = (
        ("GET", r"/user", "user"),
        ("GET", r"/rate_limit", "rate_limit"),
        ("GET", r"/orgs/(?P<org>[^/]+)/audit-log", "audit_log"),
    )
    extra_faults = frozenset({"secondary_rate_limit"})
    settings = ("limit_per_hour", "over_limit_status")

    limit_per_hour = 5000  # [doc] a personal access token
    over_limit_status = 403  # [doc] 403 or 429, with X-RateLimit-Remaining: 0

    def reset_state(self) -> None:
        self.tokens = {DEMO_CREDENTIALS["github"]["token"]}
        self.used: dict[str, tuple[int, int]] = {}  # token -> (hour window, requests in it)

    def error(self, req: Request, status: int, message: str, **extra) -> Response:
        return Response.json(status, {"message": message, "documentation_url": DOCS, **extra})  # [doc]

    def handle(self, req: Request) -> Response:
        resp = self._answer_for(req)
        resp.headers.setdefault("X-GitHub-Request-Id", request_id())
        return resp

    def _answer_for(self, req: Request) -> Response:
        scheme, token = req.authorization()
        if scheme not in ("bearer", "token") or token not in self.tokens:
            return self.error(req, 401, "Bad credentials")  # [doc] 401 {"message": "Bad credentials"}
        window = int(self.clock() // 3600)
        seen, count = self.used.get(token, (window, 0))
        count = count if seen == window else 0
        counts = req.path != "/rate_limit"  # [doc] GET /rate_limit is free
        if counts and count >= self.limit_per_hour:
            resp = self.error(req, self.over_limit_status,
                              "API rate limit exceeded for user ID 583231. If you reach out to GitHub Support "
                              "for help, please include the request ID.")
            self._headers(resp, window, count)
            return resp
        if counts:
            count += 1
            self.used[token] = (window, count)
        resp = self.route(req)
        self._headers(resp, window, count)
        return resp

    def _headers(self, resp: Response, window: int, used: int) -> None:
        resp.headers.update({  # [doc] on every authenticated answer
            "X-RateLimit-Limit": str(self.limit_per_hour),
            "X-RateLimit-Remaining": str(max(0, self.limit_per_hour - used)),
            "X-RateLimit-Reset": str((window + 1) * 3600),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
        })

    def fault_response(self, fault: Fault, req: Request) -> Response:
        if fault.name == "secondary_rate_limit":
            # [doc] a secondary limit: 403 with Retry-After; the primary headers still show room.
            resp = self.error(req, 403, "You have exceeded a secondary rate limit. Please wait a few minutes "
                                        "before you try again.")
            resp.headers["Retry-After"] = str(int(fault.params["seconds"]))
            resp.headers["X-GitHub-Request-Id"] = request_id()
            return resp
        return fault_response(fault)

    def user(self, req: Request) -> Response:
        return Response.json(200, USER)

    def rate_limit(self, req: Request) -> Response:
        scheme, token = req.authorization()
        window, count = self.used.get(token, (int(self.clock() // 3600), 0))
        core = {"limit": self.limit_per_hour, "remaining": max(0, self.limit_per_hour - count), "used": count,
                "reset": (window + 1) * 3600}
        return Response.json(200, {"resources": {"core": core}, "rate": core})

    def audit_log(self, req: Request, org: str) -> Response:
        # [doc] a token without the scope: 403 with the primary limit far from spent (not a rate limit).
        return self.error(req, 403, "Resource not accessible by personal access token")

    def add_credentials(self, data: dict) -> None:
        (token,) = require_strings(data, "token")
        with self.lock:
            self.tokens.add(token)
