"""Cleanlist WS-API (shared/VENDORS.md, "Cleanlist").

Authorization: Token; {ok, req_id, result} envelopes; /api/_refresh/ rescinds the old token at once.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.exceptions import ValidationError

from .base import Provider
from .http import ErrorInfo, Outbound, RefreshError, Reply, RequestSpec, RetryPolicy, TestStep
from .schema import Field

_API_SUFFIX = re.compile(r"/api$")
_SERVICE = re.compile(r"^[A-Za-z0-9_]+$")
DEFAULT_TEST_BODY = {"ping": "pong"}


class Cleanlist(Provider):
    key = "cleanlist"
    label = "Cleanlist"
    docs = "shared/VENDORS.md#cleanlist-ws-api — https://wsapi.staging.cleanlist.ca/api/"
    default_base_url = "https://wsapi.staging.cleanlist.ca/api"
    rescinds_on_refresh = True
    # Shown before a rotation (connections/rotation/): VENDORS.md, _refresh rescinds at once.
    refresh_warning = ("The current Cleanlist token stops working immediately: Cleanlist rescinds it the moment "
                       "it issues the new one, which Switchboard stores at once.")
    protected_paths = ("/_refresh/",)  # VENDORS.md: the refresh rescinds the old secret
    credential_fields = (
        Field("token", "API token", secret=True, help="Issued by Cleanlist support."),
    )
    option_fields = (
        Field("test_service", "Test service", required=False, default="pub_echo",
              help="pub_echo answers without checking the token; name a service the token is authorised for to prove it."),
        Field("test_body", "Test body (JSON)", required=False,
              help='The JSON object sent to the test service, e.g. {"email": "ops@example.com"} for email_verify.'),
    )
    test_proves = "POST /api/pub_echo/: the service is reachable. pub_echo does not check the token."
    # VENDORS.md: no rate limits or retry advice documented: 5xx/network backoff, 5 tries.
    retry_policy = RetryPolicy(max_attempts=5)

    def clean_options(self, data: object) -> dict:
        cleaned = super().clean_options(data)
        errors = {}
        service = cleaned.get("test_service", "pub_echo")
        if not _SERVICE.match(service):
            errors["test_service"] = "a service name such as pub_echo or email_verify"
        elif service.startswith("_"):
            # VENDORS.md: never use _refresh as a test (it rescinds the token).
            errors["test_service"] = "internal services such as _refresh cannot be a test"
        if cleaned.get("test_body"):
            try:
                body = json.loads(cleaned["test_body"])
            except ValueError:
                body = None
            if not isinstance(body, dict):
                errors["test_body"] = "must be a JSON object"
        if errors:
            raise ValidationError(errors)
        return cleaned

    def describe_test(self, options: dict) -> str:
        service = (options or {}).get("test_service") or "pub_echo"
        if service == "pub_echo":
            return self.test_proves
        return f"POST /api/{service}/: the service is reachable and the token is accepted for {service}."

    def api_root(self, base_url: str) -> str:
        # The base may be https://host, https://host/api or https://host/api/.
        return _API_SUFFIX.sub("", base_url.strip().rstrip("/"))

    def url_for(self, base_url: str, path: str) -> str:
        super().url_for(base_url, path)  # refuses absolute URLs
        path, sep, query = path.partition("?")
        path = "/" + path.strip("/")
        if path.startswith("/api/") or path == "/api":
            path = path[4:] or "/"
        # VENDORS.md: https://<host>/api/<service>/ (with the trailing slash).
        return self.api_root(base_url) + "/api" + path.rstrip("/") + "/" + (sep + query if sep else "")

    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        request.headers.setdefault("Accept", "application/json")
        if request.auth != "none":
            request.headers["Authorization"] = f"Token {secret['token']}"  # VENDORS.md: Token <token>

    def test_requests(self, options: dict) -> list[TestStep]:
        # VENDORS.md: POST /api/pub_echo/ with a small JSON object (echoed back under result),
        # or a service the operator names to prove the token.
        options = options or {}
        body = json.loads(options["test_body"]) if options.get("test_body") else dict(DEFAULT_TEST_BODY)
        spec = RequestSpec("POST", f"/{options.get('test_service') or 'pub_echo'}/", json=body, idempotent=True)
        return [TestStep(spec, self.describe_test(options))]

    # -- refresh: rescinds the old token immediately and irrevocably -----------------------
    def can_refresh(self, secret: dict) -> bool:
        return bool(secret.get("token"))

    def refresh_request(self, secret: dict, options: dict | None = None) -> RequestSpec:
        # VENDORS.md: POST /api/_refresh/ with the current token -> result.new_token. Never retried.
        return RequestSpec("POST", "/_refresh/", json={}, idempotent=False)

    def parse_refresh(self, secret: dict, data: Any, now: float | None = None) -> dict:
        result = data.get("result") if isinstance(data, dict) else None
        token = result.get("new_token") if isinstance(result, dict) else None
        if not isinstance(token, str) or not token:
            raise RefreshError("the answer carries no result.new_token")
        return {**secret, "token": token}

    probe_hint = "set the test service to one the token is authorised for (e.g. email_verify); pub_echo ignores tokens"

    def probe_request(self, secret: dict, options: dict) -> RequestSpec | None:
        # VENDORS.md: pub_echo may not check the token, so only an authorised service can tell
        # whether a token was rescinded (401/403 alike mean "rejected" when probing).
        service = (options or {}).get("test_service") or "pub_echo"
        if service == "pub_echo":
            return None
        return self.test_requests(options)[0].spec

    # -- answers ----------------------------------------------------------------
    def rejects_secret(self, status: int | None, error: ErrorInfo) -> bool:
        # VENDORS.md: what a rescinded token gets is undocumented: treat 401 and 403 alike.
        return status in (401, 403)

    def is_success(self, reply: Reply) -> bool:
        # VENDORS.md edge case 9: the status and the body's ok flag together.
        return 200 <= reply.status < 300 and isinstance(reply.data, dict) and reply.data.get("ok") is True

    def request_id(self, reply: Reply) -> str:
        if isinstance(reply.data, dict) and isinstance(reply.data.get("req_id"), str):
            return reply.data["req_id"][:200]  # VENDORS.md: req_id on every response, for support
        return super().request_id(reply)

    def parse_error(self, reply: Reply) -> ErrorInfo:
        info = super().parse_error(reply)
        error = reply.data.get("error") if isinstance(reply.data, dict) else None
        if isinstance(error, dict):
            # VENDORS.md: {ok: false, req_id, error: {error_code, error_msg}}
            if error.get("error_code"):
                info.code = str(error["error_code"])[:100]
                info.details["error_code"] = error["error_code"]
            if error.get("error_msg"):
                info.message = str(error["error_msg"])
                info.details["error_msg"] = error["error_msg"]
        elif 200 <= reply.status < 300:
            info.code = "vendor_error"
            if isinstance(reply.data, dict) and reply.data.get("ok") is not True:
                info.message = "the answer's ok flag is not true"
        return info
