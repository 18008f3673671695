"""Clever twin (shared/VENDORS.md, "Clever (education data API)").

Bearer tokens of two kinds: a district-app token (its own district and users) and an
instant-login (SSO) token that only reaches /me, /districts/{id} and /users/{id}. A fixed
one-minute window of 1200 requests per token; every answer, 429s and errors included, carries
X-RateLimit-Limit/-Remaining/-Reset/-Bucket; a 429 has an empty body and no Retry-After.
"""

from __future__ import annotations

import hashlib

from ..base import Vendor, require_strings
from ..credentials import CLEVER_SSO_TOKEN, DEMO_CREDENTIALS
from ..messages import Request, Response

DISTRICT_ID = "5a3a6b499591602988903da8"
SSO_USER_ID = "85f3ee35001b0ccbaaadc08c"
_DISTRICT = {"id": DISTRICT_ID, "name": "Switchboard Demo District", "state": "running",
             "sis_type": "sftp", "last_sync": "2025-11-20T06:00:00.000Z"}
_USERS = {
    SSO_USER_ID: {"id": SSO_USER_ID, "district": DISTRICT_ID, "email": "r.okafor@demo-district.example",
                  "name": {"first": "Rita", "last": "Okafor"}, "roles": {"teacher": {"sis_id": "T-1042"}}},
    "dad21343733c4af22c18ba7e": {"id": "dad21343733c4af22c18ba7e", "district": DISTRICT_ID,
                                 "name": {"first": "Sam", "last": "Lind"},
                                 "roles": {"student": {"sis_id": "S-20931", "grade": "7"}}},
}
_V = r"/(?P<version>v3\.[01])"  # [pub] v3.0 and v3.1 share these paths


def bucket_id(key: str) -> str:
    """The X-RateLimit-Bucket value: derived from the token, never the token itself."""
    return "bkt_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _item(version: str, kind: str, obj: dict) -> dict:
    return {"data": obj, "uri": f"/{version}/{kind}/{obj['id']}"}


def _listing(version: str, kind: str, objects: list[dict]) -> Response:
    # [pub] lists are {data: [{data: {...}}], links: [{rel, uri}]}
    return Response.json(200, {"data": [_item(version, kind, o) for o in objects],
                               "links": [{"rel": "self", "uri": f"/{version}/{kind}"}]})


def _single(version: str, kind: str, obj: dict) -> Response:
    return Response.json(200, {"data": obj, "links": [{"rel": "self", "uri": f"/{version}/{kind}/{obj['id']}"}]})


class Clever(Vendor):
    name = "clever"
    routes = (
        ("GET", _V + r"/districts", "districts"),
        ("GET", _V + r"/districts/(?P<district_id>[^/]+)", "district"),
        ("GET", _V + r"/me", "me"),
        ("GET", _V + r"/users", "users"),
        ("GET", _V + r"/users/(?P<user_id>[^/]+)", "user"),
    )
    settings = ("limit_per_minute",)

    limit_per_minute = 1200  # [doc] per bearer token, fixed window, resets every minute
    max_page_limit = 10000  # [doc] 413 when the limit parameter is over 10000

    def reset_state(self) -> None:
        self.tokens = {
            DEMO_CREDENTIALS["clever"]["token"]: {"type": "district", "district": DISTRICT_ID},
            CLEVER_SSO_TOKEN: {"type": "user", "district": DISTRICT_ID, "user": SSO_USER_ID},
        }
        self.windows: dict[str, tuple[int, int]] = {}  # bucket -> (window number, requests in it)
        self.max_per_minute_by_token = 0

    def error(self, req: Request, status: int, message: str, **extra) -> Response:
        return Response.json(status, {"message": message, **extra})  # [pub] errors {message: "..."}

    def not_found(self, req: Request) -> Response:
        # [pub] an unknown endpoint can answer HTML (VENDORS.md edge case 2).
        return Response.html(404, "404 Not Found", "The page you requested does not exist.")

    def handle(self, req: Request) -> Response:
        scheme, token = req.authorization()
        token = token if scheme == "bearer" else ""
        window = int(self.clock() // 60)  # fixed window: floor(now / 60)
        bucket = bucket_id(token or f"anonymous:{req.client_ip}")
        seen_window, count = self.windows.get(bucket, (window, 0))
        count = (count if seen_window == window else 0) + 1
        self.windows[bucket] = (window, count)
        if token:
            self.max_per_minute_by_token = max(self.max_per_minute_by_token, count)

        if count > self.limit_per_minute:
            resp = Response.empty(429)  # [doc] empty body, no Retry-After: wait for X-RateLimit-Reset
        else:
            resp = self._authorised(req, token)
        resp.headers.update({  # [doc] on every response
            "X-RateLimit-Limit": str(self.limit_per_minute),
            "X-RateLimit-Remaining": str(max(0, self.limit_per_minute - count)),
            "X-RateLimit-Reset": str((window + 1) * 60),
            "X-RateLimit-Bucket": bucket,
        })
        return resp

    def _authorised(self, req: Request, token: str) -> Response:
        grant = self.tokens.get(token) if token else None
        if grant is None:
            return self.error(req, 401, "Invalid or missing bearer token.")  # [doc] 401: check the token
        req.ctx["grant"] = grant
        limit = req.arg("limit")
        if limit is not None:
            if not limit.isdigit() or int(limit) < 1:
                return self.error(req, 400, "limit must be a positive integer.")
            if int(limit) > self.max_page_limit:
                return self.error(req, 413, f"limit must be at most {self.max_page_limit}.")
        return self.route(req)

    def _district_only(self, req: Request) -> Response | None:
        # The sheet lists 404 for "wrong token" (and no 403): an SSO token on a district-only
        # endpoint gets 404 JSON {"message"}.
        if req.ctx["grant"]["type"] != "district":
            return self.error(req, 404, "Resource not available with an instant-login token.")
        return None

    def districts(self, req: Request, version: str) -> Response:
        # Returns only the token's own district [doc].
        return self._district_only(req) or _listing(version, "districts", [_DISTRICT])

    def district(self, req: Request, version: str, district_id: str) -> Response:
        if district_id != req.ctx["grant"]["district"]:
            return self.error(req, 404, "Resource not found.")
        return _single(version, "districts", _DISTRICT)

    def users(self, req: Request, version: str) -> Response:
        limit = int(req.arg("limit", "100"))
        return self._district_only(req) or _listing(version, "users", list(_USERS.values())[:limit])

    def user(self, req: Request, version: str, user_id: str) -> Response:
        grant = req.ctx["grant"]
        visible = user_id in _USERS and (grant["type"] == "district" or grant["user"] == user_id)
        if not visible:
            return self.error(req, 404, "Resource not found.")
        return _single(version, "users", _USERS[user_id])

    def me(self, req: Request, version: str) -> Response:
        grant = req.ctx["grant"]
        kind, own_id = ("district", grant["district"]) if grant["type"] == "district" else ("user", grant["user"])
        canonical = f"/{version}/{'districts' if kind == 'district' else 'users'}/{own_id}"
        return Response.json(200, {
            "type": kind,
            "data": {"id": own_id, "district": grant["district"], "type": kind, "authorized_by": "district"},
            "links": [{"rel": "self", "uri": f"/{version}/me"}, {"rel": "canonical", "uri": canonical}],
        })

    def add_credentials(self, data: dict) -> None:
        """{"token", "type": "district" (default) or "sso"}: adds a token of that kind."""
        (token,) = require_strings(data, "token")
        kind = data.get("type", "district")
        if kind not in ("district", "sso"):
            raise ValueError('type must be "district" or "sso"')
        grant = {"type": "district", "district": DISTRICT_ID} if kind == "district" else \
            {"type": "user", "district": DISTRICT_ID, "user": SSO_USER_ID}
        with self.lock:
            self.tokens[token] = grant

    def extra_stats(self) -> dict:
        return {"max_per_minute_by_token": self.max_per_minute_by_token}
