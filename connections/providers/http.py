"""The HTTP vocabulary shared by the client and the providers: what a caller wants sent
(RequestSpec), a connection test's steps (TestStep), the request being built (Outbound), an answer as hooks see it (Reply), the
signals read from it (ErrorInfo, RateLimitInfo), throttle and retry declarations
(ThrottlePlan, Rule, RetryPolicy, Attempt), and body parsing by Content-Type.

The client (connections/outbound/client.py) drives every request; providers only answer
small questions about their vendor through the hooks of providers/base.py. Nothing here
does I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

JSON = "application/json"
XML = "application/xml"

# Query-string parameters whose values are never logged (besides every credential value).
SECRET_PARAM_NAMES = frozenset({
    "token", "access_token", "refresh_token", "id_token", "password", "passwd", "secret", "client_secret",
    "api_key", "apikey", "key", "signature", "sig", "auth", "session", "session_token", "code",
})


@dataclass
class RequestSpec:
    """What a caller wants sent. `path` is relative to the connection's API root (the provider
    normalises it); `auth` names how to authenticate: "default", "none", or a provider mode
    (TeleTracker: "login"). `expect`: media types acceptable in a successful answer (None: the
    provider's default). `idempotent`: None means by method (POST is not)."""

    method: str
    path: str
    params: dict | None = None
    json: Any = None
    data: Any = None
    headers: dict | None = None
    auth: str = "default"
    expect: tuple[str, ...] | None = None
    idempotent: bool | None = None

    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")


@dataclass(frozen=True)
class TestStep:
    """One request of a connection test, as data: the testing service sends the steps in order
    (services/testing.py). `proves` is what this request shows when it passes. `stops_on` says
    which failures end the test here: None, any failure; otherwise only a failure whose outcome
    or error code is named (CloverDX: a suspended or unreachable server), and the next step runs
    after any other. The test's answer is the last step sent."""

    __test__ = False  # not a pytest test class

    spec: RequestSpec
    proves: str = ""
    stops_on: tuple[str, ...] | None = None

    def ends_test(self, result: Any) -> bool:
        if result.ok:
            return False
        return self.stops_on is None or str(result.outcome) in self.stops_on or result.error_code in self.stops_on


@dataclass
class Outbound:
    """The request being built: authenticate() adds headers, parameters or body fields."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    json: Any = None
    data: Any = None
    auth: str = "default"


@dataclass
class Reply:
    """A response as provider hooks see it: the body is read (capped) and parsed by Content-Type."""

    status: int
    headers: Mapping[str, str]
    content_type: str  # media type, lower case, no parameters ("" when absent)
    body: bytes
    text: str
    data: Any = None  # parsed JSON, or a dict for XML; None for HTML, text and empty bodies
    parse_error: str = ""  # why a JSON/XML body could not be parsed
    truncated: bool = False  # the body was longer than the client reads

    @property
    def kind(self) -> str:
        return media_kind(self.content_type, self.body)


@dataclass
class ErrorInfo:
    code: str = ""
    message: str = ""
    request_id: str = ""
    details: dict = field(default_factory=dict)


@dataclass
class RateLimitInfo:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # Unix time
    bucket: str = ""
    retry_after: float | None = None  # seconds from now

    def as_dict(self) -> dict:
        return {k: v for k, v in (("limit", self.limit), ("remaining", self.remaining), ("reset", self.reset_at),
                                  ("bucket", self.bucket), ("retry_after", self.retry_after))
                if v not in (None, "")}

    def __bool__(self) -> bool:
        return bool(self.as_dict())


@dataclass(frozen=True)
class Rule:
    """One throttle rule. kind: "pace" (at most `limit` per `period` seconds, evenly spaced, in any
    sliding window), "concurrency" (at most `limit` in flight, lease-based), "window" (at most
    `limit` per fixed window of `period` seconds, aligned to the epoch)."""

    kind: str
    scope: str
    limit: int
    period: float = 1.0


@dataclass(frozen=True)
class ThrottlePlan:
    rules: tuple[Rule, ...] = ()
    # Where a vendor's "stop sending until T" (Retry-After, X-RateLimit-Reset) applies.
    block_scope: str = ""
    shared: bool = False  # the budget is the vendor's for every connection (e.g. per egress IP), not per connection


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # tries in all, the first included
    retry_statuses: frozenset[int] = frozenset({500, 502, 503, 504})
    backoff_base: float = 1.0  # seconds before the first retry; doubles each time
    backoff_cap: float = 30.0
    jitter: bool = True  # "full" jitter between 50% and 100% of the step
    retry_network: bool = True
    retry_429: bool = True
    # Clever's X-RateLimit-Reset comes from the vendor's clock: allow for skew.
    reset_skew: float = 1.0


@dataclass
class Attempt:
    """What the retry policy decides on: one attempt's status (None: no answer) and signals."""

    number: int
    status: int | None
    outcome: str
    error: ErrorInfo
    rate: RateLimitInfo
    maybe_delivered: bool
    idempotent: bool


class RefreshError(ValueError):
    """A refresh or login answer that does not carry what the vendor documents."""


def media_kind(content_type: str, body: bytes = b"") -> str:
    """json, xml, html, text or empty: by Content-Type first, by sniffing only when it is absent."""
    if not body.strip():
        return "empty"
    ct = content_type.lower()
    if "json" in ct:
        return "json"
    if "html" in ct:
        return "html"
    if "xml" in ct:
        return "xml"
    if ct:
        return "text"
    head = body.lstrip()[:64].lower()
    if head[:1] in (b"{", b"["):
        return "json"
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    if head.startswith(b"<"):
        return "xml"
    return "text"


def xml_to_dict(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        value = xml_to_dict(child)
        if child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def parse_body(content_type: str, body: bytes, text: str) -> tuple[Any, str]:
    """(data, parse error) by media kind. HTML, text and empty bodies give (None, "")."""
    kind = media_kind(content_type, body)
    if kind == "json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            return None, f"malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        except RecursionError:
            return None, f"malformed JSON (nested more than {MAX_DEPTH} levels deep)"
        if _too_deep(data):
            # Every consumer (envelopes, redaction, secret search) walks it recursively.
            return None, f"malformed JSON (nested more than {MAX_DEPTH} levels deep)"
        return data, ""
    if kind == "xml":
        try:
            root, problem = _parse_xml(body)
        except ET.ParseError as exc:
            return None, f"malformed XML ({exc})"
        if problem:
            return None, f"malformed XML ({problem})"
        data = {root.tag: xml_to_dict(root)} if list(root) == [] else xml_to_dict(root)
        return data, ""
    return None, ""


def _parse_xml(body: bytes) -> tuple[ET.Element | None, str]:
    """(root element, "") or (None, why not). Fed in small chunks and stopped at the first
    element too deep or one too many, so a hostile answer costs what the limits allow: 1 MB of
    <a><a><a>... took 1.4 s with ET.fromstring, and 1 MB of <a/><a/>... grows faster than its
    size (no vendor answer has 50,000 elements)."""
    parser = ET.XMLPullParser(events=("start", "end"))
    depth, count, root = 0, 0, None
    for offset in range(0, len(body), XML_CHUNK):
        parser.feed(body[offset:offset + XML_CHUNK])
        for event, element in parser.read_events():
            if event == "end":
                depth -= 1
                continue
            depth += 1
            count += 1
            root = element if root is None else root
            if depth > MAX_DEPTH:
                return None, f"nested more than {MAX_DEPTH} levels deep"
            if count > MAX_XML_ELEMENTS:
                return None, f"more than {MAX_XML_ELEMENTS:,} elements"
    parser.close()
    return root, ""


MAX_DEPTH = 64  # no vendor nests answers deeper; hostile ones do, to exhaust the stack
XML_CHUNK = 4096
MAX_XML_ELEMENTS = 50_000


def _too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Is `data` nested deeper than `limit` containers? (Iterative: safe at any depth.)"""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


SUMMARY_SCAN = 65536  # bytes of an HTML page searched for its title
SUMMARY_TEXT = 2000  # bytes of a title or heading that are cleaned up
_TAGS = re.compile(r"<[^>]{0,500}>")


def _element_text(lower: bytes, body: bytes, tag: bytes) -> bytes:
    """The content of the first <tag ...>...</tag> in `body` ("" when there is none), found with
    a constant number of linear scans: a vendor's page full of "<h1>" costs its length, not its
    square (issue 12: the lazy-regex version took 12 s on <h1> x 16,384)."""
    opening, closing = b"<" + tag, b"</" + tag
    start = lower.find(opening)
    while start != -1:
        after = lower[start + len(opening):start + len(opening) + 1]
        if after and after in b"> \t\r\n/":
            break
        start = lower.find(opening, start + len(opening))
    if start == -1:
        return b""
    gt = lower.find(b">", start)
    if gt == -1:
        return b""
    end = lower.find(closing, gt + 1)
    return body[gt + 1:end][:SUMMARY_TEXT] if end != -1 else b""


def html_summary(body: bytes) -> str:
    """The title (or first heading) of an HTML page, as one short line."""
    head = body[:SUMMARY_SCAN]
    lower = head.lower()
    for tag in (b"title", b"h1"):
        content = _element_text(lower, head, tag)
        if content:
            text = _TAGS.sub(" ", content.decode("utf-8", "replace"))
            text = " ".join(html.unescape(text).split())
            if text:
                return text[:200]
    return ""


def first_line(text: str, limit: int = 300) -> str:
    """The start of a text answer on one line (only the start is looked at: a 1 MB line costs
    no more than a short one)."""
    line = " ".join(text.lstrip()[:limit * 4].split())
    return line[:limit]


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    # A hostile or broken vendor may say "inf" or the year 9999: cap it (stored, shown, added to now).
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


# The longest wait a vendor's Retry-After may impose (longer or infinite values are capped).
MAX_RETRY_AFTER = 30 * 86400.0
_INT_LIMIT = 2**31 - 1  # rate-limit figures are stored in 32-bit integer columns


def header_int(value: str | None) -> int | None:
    """A header's integer, or None when it is absent, not a number, infinite or out of range."""
    try:
        number = int(float(value)) if value not in (None, "") else None
    except (ValueError, OverflowError):
        return None
    return number if number is None or -_INT_LIMIT <= number <= _INT_LIMIT else None


STATUS_CODES = {400: "bad_request", 401: "unauthorized", 402: "invalid_parameters", 403: "forbidden",
                404: "not_found", 405: "method_not_allowed", 409: "conflict", 413: "too_large",
                415: "unsupported_media_type", 422: "unprocessable", 429: "rate_limited", 500: "server_error",
                501: "not_implemented", 502: "bad_gateway", 503: "unavailable", 504: "gateway_timeout"}


def status_code_name(status: int) -> str:
    return STATUS_CODES.get(status, f"http_{status}")


def basic_token(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()
