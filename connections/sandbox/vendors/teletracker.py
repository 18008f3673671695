"""TeleTracker twin (shared/VENDORS.md, "TeleTracker REST API").

Every answer is a JSON envelope {"success", "guid", "data"}; errors add "message" and
"errorDetail", a 400 adds "missingInputVars"; a 5xx has no body at all. Three auth schemes on
data endpoints: Basic (account_id optional: without it an arbitrary account is used), Integrator
(account_id mandatory) and Bearer session tokens from POST /auth/login. POST /auth/refresh
returns a new token and a new refresh token; the old refresh token is dead at once.

Choices where the sheet is silent: refreshing also kills the old session token (counted as a
rescinded token if used again) unless the setting refresh_rescinds_session is false (the old
access token then lives until it expires: only the refresh token is consumed); "the arbitrary account" is the user's first one, so a client
that omits account_id visibly lands on the wrong account; a bad date is 422.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP

from ..base import TokenStore, Vendor, require_strings
from ..credentials import DEMO_CREDENTIALS, TELETRACKER_DEMO_ACCOUNTS
from ..messages import BadBody, Request, Response, decode_basic, new_request_id

REFRESH_PATH = "/auth/refresh"
_TRUE = {"1", "true", "yes", "on"}


class UnsupportedMedia(ValueError):
    pass


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def read_params(req: Request) -> dict[str, str]:
    """Query string plus body: form-urlencoded, multipart/form-data or JSON [doc]."""
    params = {k: v[0] for k, v in req.query.items()}
    if not req.body:
        return params
    kind = req.content_type
    if kind == "application/x-www-form-urlencoded":
        body = req.form()
    elif kind == "application/json":
        body = req.json()
        if not isinstance(body, dict):
            raise BadBody("the JSON body must be an object")
    elif kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + req.header("Content-Type", "").encode() + b"\r\n\r\n" + req.body)
        if not message.is_multipart():
            raise BadBody("malformed multipart body")
        body = {part.get_param("name", header="content-disposition"): part.get_content()
                for part in message.iter_parts()}
    else:
        raise UnsupportedMedia(kind or "no Content-Type")
    return {**params, **{k: _as_text(v) for k, v in body.items()}}


class TeleTracker(Vendor):
    name = "teletracker"
    refreshes = True
    extra_faults = frozenset({"drop_after_refresh", "garble_after_refresh"})
    routes = (
        ("POST", r"/auth/login", "login"),
        ("POST", r"/auth/refresh", "refresh"),
        ("GET", r"/reports/call-data", "call_data"),
        ("GET", r"/accounts", "accounts"),
    )
    settings = ("token_lifetime", "refresh_token_lifetime", "refresh_rescinds_session")

    token_lifetime = 3600  # [pub] tokenLifetime (3600 s)
    refresh_token_lifetime = 14 * 86400
    refresh_rescinds_session = True  # [infer] the sheet only says the old refresh token dies

    def reset_state(self) -> None:
        demo = DEMO_CREDENTIALS["teletracker"]
        self.users = {demo["username"]: {"password": demo["password"], "accounts": list(TELETRACKER_DEMO_ACCOUNTS)}}
        self.sessions = TokenStore()  # session token -> {user, account, expires}
        self.refresh_tokens = TokenStore()  # refresh token -> {session, user, account, expires}

    # ----- envelope ---------------------------------------------------------------------

    def envelope(self, status: int, data=None, **extra) -> Response:
        if status >= 500:
            return Response.empty(status)  # [doc] a 5xx may have no body at all
        # [doc] always success and guid (the request id for support), data under data.
        return Response.json(status, {"success": status < 400, "guid": new_request_id(), "data": data, **extra})

    def error(self, req: Request, status: int, message: str, **extra) -> Response:
        extra.setdefault("errorDetail", message)
        if status == 400:
            extra.setdefault("missingInputVars", [])  # [doc] 400 adds errorDetail and missingInputVars
        return self.envelope(status, None, message=message, **extra)

    def missing(self, req: Request, *names: str) -> Response:
        return self.error(req, 400, "Missing required input.", missingInputVars=list(names),
                          errorDetail=f"Required input missing: {', '.join(names)}")

    def is_refresh(self, req: Request) -> bool:
        return req.path == REFRESH_PATH

    def handle(self, req: Request) -> Response:
        try:
            req.ctx["params"] = read_params(req)
        except UnsupportedMedia as exc:
            return self.error(req, 415, f"Unsupported media type: {exc}.")  # [doc] 415
        except BadBody as exc:
            return self.error(req, 400, f"The request body could not be read: {exc}.")
        return self.route(req)

    # ----- authentication ---------------------------------------------------------------

    def check_password(self, username: str, password: str) -> dict | None:
        user = self.users.get(username)
        return user if user and user["password"] == password else None

    def principal(self, req: Request) -> tuple[str, str] | Response:
        """(user name, account id) for a data endpoint, or the error to answer."""
        scheme, credentials = req.authorization()
        account_id = req.ctx["params"].get("account_id")
        if scheme == "bearer":
            session = self.sessions.get(credentials)
            if session is None:
                if self.sessions.is_rescinded(credentials):
                    self.note_rescinded_use()
                return self.error(req, 401, "Invalid session token.")
            if session["expires"] <= self.clock():
                return self.error(req, 401, "Session token expired.")
            return session["user"], session["account"]
        if scheme in ("basic", "integrator"):
            pair = decode_basic(credentials)
            user = self.check_password(*pair) if pair else None
            if user is None:
                return self.error(req, 401, "Invalid username or password.")
            if not account_id:
                if scheme == "integrator":
                    return self.missing(req, "account_id")  # [pub] mandatory for Integrator
                return pair[0], user["accounts"][0]  # [pub] Basic: an arbitrary account
            if account_id not in user["accounts"]:
                return self.error(req, 403, f"No access to account {account_id}.")
            return pair[0], account_id
        return self.error(req, 401, "Authentication required (Basic, Integrator or Bearer).")

    def new_session(self, username: str, account_id: str) -> dict:
        now = self.clock()
        token = self.sessions.issue("tts_", user=username, account=account_id, expires=now + self.token_lifetime)
        refresh = self.refresh_tokens.issue("ttr_", session=token, user=username, account=account_id,
                                            expires=now + self.refresh_token_lifetime)
        return {"token": token, "tokenExpiration": iso(now + self.token_lifetime),
                "tokenLifetime": self.token_lifetime, "refreshToken": refresh,
                "refreshTokenExpiration": iso(now + self.refresh_token_lifetime), "account_id": account_id}

    # ----- endpoints ------------------------------------------------------------------

    def login(self, req: Request) -> Response:
        params = req.ctx["params"]
        absent = [name for name in ("username", "password") if not params.get(name)]
        if absent:
            return self.missing(req, *absent)
        user = self.check_password(params["username"], params["password"])
        if user is None:
            return self.error(req, 401, "Invalid username or password.")
        account_id = params.get("account_id") or user["accounts"][0]
        if account_id not in user["accounts"]:
            return self.error(req, 403, f"No access to account {account_id}.")
        if params.get("auth_only", "").lower() in _TRUE:
            return self.envelope(200, {})  # [pub] checks the password, creates no session
        return self.envelope(200, self.new_session(params["username"], account_id))

    def refresh(self, req: Request) -> Response:
        presented = req.ctx["params"].get("refresh_token")
        grant = self.refresh_tokens.get(presented) if presented else None
        current = grant is not None and grant["expires"] > self.clock()
        self.record_refresh(token_was_current=current, rotated=current)
        if not presented:
            return self.missing(req, "refresh_token")
        if not current:
            if self.refresh_tokens.is_rescinded(presented):
                self.note_rescinded_use()
            return self.error(req, 401, "Invalid or expired refresh token.")
        # [pub] new token AND new refresh token; the old refresh token no longer works.
        self.refresh_tokens.rescind(presented)
        if self.refresh_rescinds_session:
            self.sessions.rescind(grant["session"])
        return self.envelope(200, self.new_session(grant["user"], grant["account"]))

    def call_data(self, req: Request) -> Response:
        who = self.principal(req)
        if isinstance(who, Response):
            return who
        _, account_id = who
        params = req.ctx["params"]
        if not params.get("start"):
            return self.missing(req, "start")
        try:
            start = datetime.fromisoformat(params["start"])
            end = datetime.fromisoformat(params["end"]) if params.get("end") else None
        except ValueError:
            return self.error(req, 422, "start and end must be ISO 8601 dates.")  # [doc] 422
        day = start.date().isoformat()
        rows = [{"call_id": f"{account_id}-{day}-{n}", "account_id": account_id, "start_time": f"{day}T{n + 8:02d}:15:00Z",
                 "duration": 60 + 45 * n, "caller_number": f"+1555010{n:04d}", "tracking_number": "+15550199999"}
                for n in range(3)]
        return self.envelope(200, {"account_id": account_id, "start": params["start"],
                                   "end": end.isoformat() if end else None, "rows": rows})

    def accounts(self, req: Request) -> Response:
        who = self.principal(req)
        if isinstance(who, Response):
            return who
        username, account_id = who
        return self.envelope(200, {"account_id": account_id, "accounts": self.users[username]["accounts"]})

    # ----- control --------------------------------------------------------------------

    def add_credentials(self, data: dict) -> None:
        """{"username", "password", "account_id"} or {..., "accounts": [...]}: adds or replaces a user."""
        username, password = require_strings(data, "username", "password")
        accounts = data.get("accounts") or ([data["account_id"]] if data.get("account_id") else None)
        if not accounts or not all(isinstance(a, str) and a for a in accounts):
            raise ValueError("give account_id (a string) or accounts (a list of strings)")
        with self.lock:
            self.users[username] = {"password": password, "accounts": list(accounts)}

    def extra_stats(self) -> dict:
        now = self.clock()
        return {"live_sessions": sum(1 for s in self.sessions.live.values() if s["expires"] > now)}
