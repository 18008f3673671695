"""What a twin sees of an HTTP exchange: Request and Response, plus small parsing helpers."""

from __future__ import annotations

import base64
import binascii
import html
import json
import secrets
import uuid
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import parse_qs


class BadBody(ValueError):
    """The request body could not be parsed as the Content-Type says."""


@dataclass
class Request:
    """One request as a twin sees it: `path` is relative to the vendor prefix."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    client_ip: str
    # Filled in by Vendor.dispatch before routing: what the vendor "sees" of this client.
    in_flight: int = 0  # concurrent requests from this IP, this one included
    per_second: int = 0  # requests from this IP in the last 1.0 s, this one included
    ctx: dict = field(default_factory=dict)  # per-request scratch space for a twin

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def content_type(self) -> str:
        """Media type without parameters, lower case ("" when absent)."""
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def authorization(self) -> tuple[str, str]:
        """(scheme in lower case, credentials) from the Authorization header; ("", "") if absent."""
        scheme, _, param = (self.header("Authorization") or "").strip().partition(" ")
        return scheme.lower(), param.strip()

    def basic_auth(self) -> tuple[str, str] | None:
        """(user, password) from HTTP Basic; None when absent or malformed."""
        scheme, credentials = self.authorization()
        return decode_basic(credentials) if scheme == "basic" else None

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadBody(f"body is not valid JSON: {exc}") from None

    def form(self) -> dict[str, str]:
        try:
            parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise BadBody("form body is not UTF-8") from None
        return {k: v[0] for k, v in parsed.items()}


def decode_basic(credentials: str) -> tuple[str, str] | None:
    """user, password from a base64 "user:pass" (Basic and TeleTracker's Integrator scheme)."""
    try:
        user, sep, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # None: answer normally. "reset": close with RST, no answer. "close": close (FIN), no answer.
    abort: str | None = None

    @classmethod
    def json(cls, status: int, obj, headers: dict | None = None) -> Response:
        body = json.dumps(obj, separators=(",", ":")).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8",
             headers: dict | None = None) -> Response:
        return cls(status, text.encode("utf-8"), {"Content-Type": content_type, **(headers or {})})

    @classmethod
    def html(cls, status: int, title: str, message: str = "", headers: dict | None = None) -> Response:
        title, message = html.escape(title), html.escape(message)
        page = (f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>"
                f"<body><h1>{title}</h1><p>{message}</p></body></html>\n")
        return cls.text(status, page, "text/html; charset=utf-8", headers)

    @classmethod
    def empty(cls, status: int, headers: dict | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))

    @classmethod
    def aborted(cls, how: str) -> Response:
        return cls(0, abort=how)


def new_secret(prefix: str = "", nbytes: int = 20) -> str:
    return prefix + secrets.token_hex(nbytes)


def new_request_id() -> str:
    return str(uuid.uuid4())
