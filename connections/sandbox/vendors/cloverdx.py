"""CloverDX Server twin (shared/VENDORS.md, "CloverDX Server REST API").

HTTP Basic with per-resource permissions (monitors need Monitoring); every REST call must carry
X-Requested-By; 5 failed logins within 300 s lock the user for 300 s; /clover/accessibilityTest.jsp
(no auth) answers 200 OK or 503 SUSPENDED.

Choices where the sheet is silent: errors are JSON {"status", "error", "message"}; the
X-Requested-By check comes before authentication (a refused request is no login attempt); a
suspended server answers REST calls 503 with that JSON; other paths get a Tomcat-like HTML 404.
"""

from __future__ import annotations

import time
from http import HTTPStatus

from ..base import Vendor, require_strings
from ..credentials import CLOVERDX_NO_MONITORING_CREDENTIALS, DEMO_CREDENTIALS
from ..messages import Request, Response

ACCESSIBILITY_PATH = "/clover/accessibilityTest.jsp"
REST_PREFIX = "/clover/api/rest/v1/"
_EXECUTIONS = [
    {"runId": 4210 - i, "jobFile": f"sandbox://etl/graph/{name}.grf", "status": status,
     "startTime": f"2025-11-2{i}T0{i}:00:00.000Z", "durationMs": 1200 + 350 * i}
    for i, (name, status) in enumerate([("LoadCustomers", "FINISHED_OK"), ("SyncOrders", "RUNNING"),
                                        ("NightlyExport", "FINISHED_OK"), ("CleanStaging", "ERROR"),
                                        ("LoadCustomers", "FINISHED_OK")])
]
_MONITORS = [{"id": 1, "name": "Disk space", "status": "OK"},
             {"id": 2, "name": "Cluster nodes", "status": "OK"}]


class CloverDX(Vendor):
    name = "cloverdx"
    extra_faults = frozenset({"suspended"})
    routes = (
        ("GET", r"/clover/accessibilityTest\.jsp", "accessibility_test"),
        ("GET", r"/clover/api/rest/v1/executions", "executions"),
        ("GET", r"/clover/api/rest/v1/monitors", "monitors"),
    )
    settings = ("lockout_after", "lockout_window_seconds", "lockout_seconds")

    lockout_after = 5  # [pub] N failed logins (recommended 5) ...
    lockout_window_seconds = 300.0  # ... within 300 s ...
    lockout_seconds = 300.0  # ... lock the user for 300 s

    def reset_state(self) -> None:
        demo, viewer = DEMO_CREDENTIALS["cloverdx"], CLOVERDX_NO_MONITORING_CREDENTIALS
        self.users = {demo["username"]: {"password": demo["password"], "permissions": {"Monitoring"}},
                      viewer["username"]: {"password": viewer["password"], "permissions": set()}}
        self.failures: dict[str, list[float]] = {}  # user -> monotonic times of recent failures
        self.locked_until: dict[str, float] = {}
        self.suspended = False  # settable; fault "suspended" does the same per request

    def error(self, req: Request, status: int, message: str, **extra) -> Response:
        return Response.json(status, {"status": status, "error": HTTPStatus(status).phrase,
                                      "message": message, **extra})

    def not_found(self, req: Request) -> Response:
        if req.path.startswith(REST_PREFIX):
            return self.error(req, 404, f"No such resource: {req.path}")
        return Response.html(404, "HTTP Status 404 – Not Found", f"The requested resource [{req.path}] is not available")

    def fault_response(self, fault, req: Request) -> Response:
        if fault.name == "suspended":
            return self.suspended_response(req)
        return super().fault_response(fault, req)

    def suspended_response(self, req: Request) -> Response:
        if req.path == ACCESSIBILITY_PATH:
            return Response.text(503, "SUSPENDED")  # [pub] cloverdx-server-docker README
        return self.error(req, 503, "SUSPENDED: the server is suspended.")

    def handle(self, req: Request) -> Response:
        if self.suspended:
            return self.suspended_response(req)
        if req.path.startswith(REST_PREFIX):
            if req.header("X-Requested-By") is None:
                # [doc] CSRF protection: refused without it. The real status is undocumented.
                return self.error(req, 400, "The X-Requested-By header is required (any value).")
            denied = self.authenticate(req)
            if denied:
                return denied
        return self.route(req)

    def authenticate(self, req: Request) -> Response | None:
        pair = req.basic_auth()
        if pair is not None:
            user, password = pair
            now = time.monotonic()
            if self.locked_until.get(user, 0) <= now:
                account = self.users.get(user)
                if account and account["password"] == password:
                    req.ctx["user"] = account
                    return None
                recent = [t for t in self.failures.get(user, []) if t > now - self.lockout_window_seconds]
                recent.append(now)
                self.failures[user] = recent
                if len(recent) >= self.lockout_after:
                    self.locked_until[user] = now + self.lockout_seconds
                    self.failures[user] = []
        # A locked user gets the same answer as a wrong password, even with the right one.
        resp = self.error(req, 401, "Invalid user name or password.")
        resp.headers["WWW-Authenticate"] = 'Basic realm="CloverDX Server"'
        return resp

    # ----- endpoints ------------------------------------------------------------------

    def accessibility_test(self, req: Request) -> Response:
        return Response.text(200, "OK")

    def executions(self, req: Request) -> Response:
        page_size = req.arg("pageSize", "25")
        if not page_size.isdigit() or not 1 <= int(page_size) <= 1000:
            return self.error(req, 400, "pageSize must be an integer between 1 and 1000.")
        return Response.json(200, _EXECUTIONS[: int(page_size)])

    def monitors(self, req: Request) -> Response:
        if "Monitoring" not in req.ctx["user"]["permissions"]:
            return self.error(req, 403, "Access denied: the Monitoring permission is required.")  # [doc]
        return Response.json(200, _MONITORS)

    # ----- control --------------------------------------------------------------------

    def add_credentials(self, data: dict) -> None:
        """{"username", "password", "permissions": [...] (default ["Monitoring"])}; unlocks the user."""
        username, password = require_strings(data, "username", "password")
        permissions = data.get("permissions", ["Monitoring"])
        if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
            raise ValueError("permissions must be a list of strings")
        with self.lock:
            self.users[username] = {"password": password, "permissions": set(permissions)}
            self.failures.pop(username, None)
            self.locked_until.pop(username, None)

    def extra_stats(self) -> dict:
        now = time.monotonic()
        return {
            "suspended": self.suspended,
            "locked_users": sorted(u for u, end in self.locked_until.items() if end > now),
            "failed_logins": {u: len([t for t in ts if t > now - self.lockout_window_seconds])
                              for u, ts in self.failures.items() if ts},
        }
