"""What every provider declares, and the shared behaviour vendors override in small hooks.

A provider is one module per vendor, registered by key in registry.py. This module
holds the schema types (credential fields, connection options) the vault's forms and
CLI validate against, the outbound types the client hands to providers (RequestSpec,
Outbound, Reply, ErrorInfo, RateLimitInfo, ThrottlePlan, RetryPolicy), and the Provider
base class. The base implements the generic HTTP behaviour (URL joining, body parsing by
Content-Type, error envelopes, rate-limit headers, retry with backoff); each vendor
overrides the small hooks where its documentation (shared/VENDORS.md) says otherwise.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import random
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Field:
    """One field of a credential (stored encrypted, whether secret or not) or of the options."""

    name: str
    label: str
    secret: bool = False
    required: bool = True
    choices: tuple[str, ...] = ()
    default: str | None = None
    help: str = ""


class SchemaError(ValueError):
    """Input that does not match a provider's schema; `errors` maps field name to message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def _clean_fields(fields: tuple[Field, ...], data: object, *, what: str, allow_unknown: bool = False) -> dict:
    if not isinstance(data, dict):
        raise SchemaError({"__all__": f"the {what} must be a JSON object"})
    errors: dict[str, str] = {}
    cleaned: dict[str, str] = {}
    known = {f.name for f in fields}
    for name in data:
        if name not in known and not allow_unknown:
            errors[name] = f"unknown {what} field (expected: {', '.join(sorted(known)) or 'none'})"
    for f in fields:
        value = data.get(f.name)
        if value is None or value == "":
            if f.required and f.default is None:
                errors[f.name] = "this field is required"
            elif f.default is not None:
                cleaned[f.name] = f.default
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            errors[f.name] = "must be a string"
            continue
        value = str(value).strip() if not f.secret else str(value)
        if f.choices and value not in f.choices:
            errors[f.name] = f"must be one of: {', '.join(f.choices)}"
            continue
        if not value.strip():
            errors[f.name] = "this field is required" if f.required else "must not be blank"
            continue
        if any(ch in value for ch in "\x00\r\n"):
            # They cannot travel in an HTTP header, and PostgreSQL refuses NUL in text.
            errors[f.name] = "must not contain NUL or line breaks"
            continue
        cleaned[f.name] = value
    if errors:
        raise SchemaError(errors)
    return cleaned


# The largest credential field accepted (settings.SECRET_MAX_FIELD_BYTES overrides it): no vendor
# issues larger secrets, and a 5 MB "token" would be stored, sent as a 5 MB header and searched
# for in every log text.
SECRET_MAX_FIELD_BYTES = 16 * 1024


def secret_max_field_bytes() -> int:
    try:
        from django.conf import settings

        return int(getattr(settings, "SECRET_MAX_FIELD_BYTES", SECRET_MAX_FIELD_BYTES))
    except Exception:  # outside Django (the sandbox, a bare script): the default
        return SECRET_MAX_FIELD_BYTES


def _check_secret_sizes(fields: tuple[Field, ...], data: object) -> None:
    """SchemaError naming every credential field larger than the limit, before anything else
    looks at it."""
    if not isinstance(data, dict):
        return
    limit = secret_max_field_bytes()
    errors = {}
    for f in fields:
        value = data.get(f.name)
        size = len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else 0
        if size > limit:
            errors[f.name] = (f"is too long: {size:,} bytes; a credential field holds at most {limit:,} bytes "
                              "(setting SECRET_MAX_FIELD_BYTES). Nothing was stored.")
    if errors:
        raise SchemaError(errors)


# ----------------------------------------------------------------------------- outbound types
#
# The client (connections/client.py) drives every request; providers only answer small
# questions about their vendor through the hooks below. Nothing here does I/O.

JSON = "application/json"
XML = "application/xml"

# Query-string parameters whose values are never logged (besides every credential value).
SECRET_PARAM_NAMES = frozenset({
    "token", "access_token", "refresh_token", "id_token", "password", "passwd", "secret", "client_secret",
    "api_key", "apikey", "key", "signature", "sig", "auth", "session", "session_token", "code",
})
# JSON keys whose string values in a response are secrets (a refresh's new token, a login's session).
_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|authorization|session)", re.I)
_NOT_SECRET_KEY = re.compile(r"(expir|lifetime|type|_at$|ttl|scope)", re.I)


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


def _int(value: str | None) -> int | None:
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

class Provider:
    """Base class. Subclasses set the class attributes and override the hooks that differ."""

    key: str = ""
    label: str = ""
    docs: str = ""  # where the behaviour comes from (shared/VENDORS.md section + vendor URL)
    default_base_url: str = ""
    credential_fields: tuple[Field, ...] = ()
    option_fields: tuple[Field, ...] = ()
    # Rescind-on-refresh vendors (the refresh call invalidates the old secret) set this.
    rescinds_on_refresh: bool = False
    # What the connection test proves, shown on the page next to the result.
    test_proves: str = ""
    # Media types a successful answer may carry (an empty body always passes).
    expected_types: tuple[str, ...] = (JSON,)
    retry_policy: RetryPolicy = RetryPolicy()

    # -- schema -------------------------------------------------------------
    def clean_secret(self, data: object) -> dict:
        _check_secret_sizes(self.credential_fields, data)
        return _clean_fields(self.credential_fields, data, what="secret")

    def clean_options(self, data: object) -> dict:
        return _clean_fields(self.option_fields, data or {}, what="option")

    def default_options(self) -> dict:
        return {f.name: f.default for f in self.option_fields if f.default is not None}

    def secret_field_names(self) -> list[str]:
        return [f.name for f in self.credential_fields if f.secret]

    def clean_base_url(self, base_url: str) -> str:
        """Syntactic check only (the outbound guard checks addresses at send time)."""
        if any(ord(ch) < 32 or ch.isspace() for ch in base_url.strip()):
            raise SchemaError({"base_url": "must not contain spaces or control characters"})
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SchemaError({"base_url": "must be an absolute http(s) URL, e.g. " + (self.default_base_url or "https://api.example.com")})
        if parts.query or parts.fragment:
            raise SchemaError({"base_url": "must not carry a query string or fragment"})
        if parts.username or parts.password:
            raise SchemaError({"base_url": "must not carry credentials; put them in the secret"})
        return base_url.strip().rstrip("/")

    def describe_test(self, options: dict) -> str:
        return self.test_proves

    def describe_limits(self) -> str:
        """The rate limits in force for this vendor, in words (pages show it next to headroom)."""
        return "No rate limit documented; 5xx and network errors back off with jitter, at most 5 tries."

    # -- addressing ---------------------------------------------------------
    def api_root(self, base_url: str) -> str:
        """The base URL normalised to the root that request paths are appended to."""
        return base_url.strip().rstrip("/")

    def url_for(self, base_url: str, path: str) -> str:
        """The full URL of a request path. Absolute URLs are refused: a credential only ever
        goes to its connection's own base URL."""
        if "://" in path.split("?", 1)[0] or path.startswith("//"):
            raise ValueError("the path must be relative to the connection's base URL, not a full URL")
        return self.api_root(base_url) + "/" + path.lstrip("/")

    # -- authentication -------------------------------------------------------
    def authenticate(self, request: Outbound, secret: dict, options: dict) -> None:
        """Add the credential to an outbound request (headers, parameters or body fields)."""

    def secret_values(self, secret: dict) -> list[str]:
        """Every secret value of a credential: the fields declared secret, and the token-like values
        of nested objects (a stored session). Identifiers (user names, account ids) and choices are
        not secrets: they are shown like fingerprints, never masked (connections/redaction.py)."""
        fields = {f.name: f for f in self.credential_fields}
        values: list[str] = []
        for name, value in secret.items():
            f = fields.get(name)
            if f is not None:
                if f.secret and isinstance(value, str) and value:
                    values.append(value)
            elif isinstance(value, dict | list):
                values.extend(self.response_secrets(value))
            elif isinstance(value, str) and value:
                values.append(value)  # a field no schema declares: treated as secret
        return values

    def composite_values(self, secret: dict) -> list[str]:
        """Secret strings made of an identifier and a secret ("user:password", the text under a
        Basic header's base64): masked only whole, never as a prefix (that would be the user name)."""
        if secret.get("username") and secret.get("password"):
            return [f"{secret['username']}:{secret['password']}"]
        return []

    def response_secrets(self, data: Any) -> list[str]:
        """Secret values an answer carries (a refresh's new token, a login's session tokens):
        string values under token/secret/password/session keys, found anywhere in the body."""
        found: list[str] = []

        def walk(obj: Any, key: str = "") -> None:
            if isinstance(obj, dict):
                for k, v in obj.items():
                    walk(v, str(k))
            elif isinstance(obj, list):
                for v in obj:
                    walk(v, key)
            elif isinstance(obj, str) and obj and _SECRET_KEY.search(key) and not _NOT_SECRET_KEY.search(key):
                found.append(obj)

        walk(data)
        return found

    # Sessions (TeleTracker bearer sessions): a login before the first call, stored encrypted.
    def needs_session(self, secret: dict, options: dict, spec: RequestSpec) -> bool:
        return False

    def has_session(self, secret: dict) -> bool:
        return False

    def login_request(self, options: dict) -> RequestSpec:
        raise NotImplementedError(f"{self.key} has no sessions")

    def parse_login(self, secret: dict, data: Any, now: float) -> dict:
        raise NotImplementedError(f"{self.key} has no sessions")

    # -- the connection test ----------------------------------------------------
    def test_request(self, options: dict) -> RequestSpec:
        raise NotImplementedError

    def run_test(self, send: Callable[[RequestSpec], Any], options: dict) -> Any:
        """Run the connection test through `send` (the client); returns its Result."""
        return send(self.test_request(options))

    # -- refresh (rescind-on-refresh vendors) -------------------------------------
    def can_refresh(self, secret: dict) -> bool:
        return False

    def refresh_request(self, secret: dict, options: dict | None = None) -> RequestSpec:
        raise NotImplementedError(f"{self.key} has no refresh endpoint")

    def parse_refresh(self, secret: dict, data: Any, now: float | None = None) -> dict:
        """The new secret from a successful refresh answer; RefreshError when it is not there."""
        raise NotImplementedError(f"{self.key} has no refresh endpoint")

    def probe_request(self, secret: dict, options: dict) -> RequestSpec | None:
        """A cheap authenticated call that tells whether a (possibly rescinded) secret is still
        accepted, without rotating anything; None when the vendor has none (rotation.py)."""
        return None

    probe_hint: str = ""  # what an operator can change so a probe becomes possible
    # Shown before a refresh runs (rotation/refresh.py; empty: a generic sentence).
    refresh_warning: str = ""
    # After a lost refresh answer: what to ask support for (empty: "issue a new <label> secret").
    lost_refresh_advice: str = ""
    # How long the vendor's support keeps a request's data, where the vendor documents it (days).
    support_keeps_days: int | None = None
    # Paths an ad-hoc call must never reach (a refresh would rescind the secret without storing
    # the new one): only rotation.py calls them.
    protected_paths: tuple[str, ...] = ()

    def is_protected(self, base_url: str, path: str) -> bool:
        target = self.url_for(base_url, path.split("?", 1)[0]).rstrip("/")
        return any(self.url_for(base_url, p).rstrip("/") == target for p in self.protected_paths)

    def rotation_mode(self, secret: dict) -> str:
        """How this secret rotates: "refresh" (the vendor issues the next one), "login" (a
        bearer-session credential with no session yet: rotating starts one) or "replace" (an
        operator pastes a new one). Stored in Credential.meta, so pages never decrypt to decide."""
        return "refresh" if self.rescinds_on_refresh and self.can_refresh(secret) else "replace"

    def renews_by_rotation(self, secret: dict) -> bool:
        """Is a new session (access token) obtained by a refresh that rotates the secret? Then a
        call that finds it expired renews it through rotation (claim, journal, spool), not a login
        (oauth2's refresh-token grant)."""
        return False

    def verifies_by_refresh(self, secret: dict) -> bool:
        """Can a pasted secret only be checked by consuming it (a refresh token without an access
        token)? Then a paste is promoted and refreshed under the claim, and put back if refused."""
        return False

    def grant_refused(self, status: int | None, error: ErrorInfo) -> bool:
        """Does a refused refresh say the secret is dead for good (OAuth 2.0 invalid_grant)? The
        connection then needs attention (reauthorize_advice) and is not refreshed with it again."""
        return False

    # What to do when the refresh secret is lost or dead ("{name}": the connection), e.g. oauth2's
    # "re-authorize: press Connect"; empty: ask the vendor's support for a new secret.
    reauthorize_advice: str = ""
    # Options that are URLs a secret is sent to or a browser is sent to (checked like base URLs).
    url_options: tuple[str, ...] = ()

    def secret_urls(self, base_url: str, options: dict) -> list[str]:
        """Every URL this connection's secret is sent to: it is bound to their origins (vault)."""
        return [base_url]

    def recovers_by_login(self, secret: dict) -> bool:
        """After a refresh whose outcome is unknown, does logging in again with the stored
        credential replace whatever the refresh consumed? (TeleTracker sessions: the refresh
        token cannot be checked without consuming it, but the password is untouched.)"""
        return False

    def credential_meta(self, secret: dict) -> dict:
        """Non-secret facts stored with a credential: how it rotates (and e.g. a session's expiry)."""
        return {"rotation": self.rotation_mode(secret)}

    # -- answers -----------------------------------------------------------------
    def accepts(self, options: dict) -> tuple[str, ...]:
        return self.expected_types

    def is_success(self, reply: Reply) -> bool:
        return 200 <= reply.status < 300

    def request_id(self, reply: Reply) -> str:
        for name in ("X-Request-Id", "X-Request-ID", "Request-Id", "X-Correlation-Id"):
            value = reply.headers.get(name)
            if value:
                return value[:200]
        return ""

    def error_message(self, reply: Reply) -> str:
        """A readable message from whatever the body is."""
        data = reply.data
        if isinstance(data, dict):
            for key in ("message", "error_msg", "errorDetail", "detail", "title", "error_description", "error"):
                value = data.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()[:1000]
                if isinstance(value, dict):
                    for inner in ("message", "error_msg", "detail"):
                        if isinstance(value.get(inner), str) and value[inner].strip():
                            return value[inner].strip()[:1000]
        kind = reply.kind
        if kind == "html":
            summary = html_summary(reply.body)
            return f"HTML page: {summary}" if summary else "an HTML page instead of an API answer"
        if kind == "empty":
            return f"HTTP {reply.status} with an empty body"
        if kind == "text":
            return first_line(reply.text)
        if reply.parse_error:
            return reply.parse_error
        return f"HTTP {reply.status}"

    def parse_error(self, reply: Reply) -> ErrorInfo:
        """(code, message, vendor request id, details) of an answer that is not a success."""
        code = status_code_name(reply.status) if not 200 <= reply.status < 300 else "vendor_error"
        details: dict = {}
        if reply.parse_error:
            details["parse_error"] = reply.parse_error
        return ErrorInfo(code=code, message=self.error_message(reply), request_id=self.request_id(reply),
                         details=details)

    def is_auth_failure(self, status: int | None, error: ErrorInfo) -> bool:
        """Did the vendor reject the credential? (Pauses scheduled tests: accounts lock.)"""
        return status == 401

    def rejects_secret(self, status: int | None, error: ErrorInfo) -> bool:
        """Does this answer say the secret itself is invalid or rescinded? A request in flight
        while a rotation finished is then retried once with the new secret (client.py), and a
        probe after a refresh reads it as "rejected" (rotation/refresh.py)."""
        return status == 401

    # -- rate limits, blocks and retries ---------------------------------------------
    def rate_limit(self, reply: Reply, now: float) -> RateLimitInfo:
        h = reply.headers
        reset = _int(h.get("X-RateLimit-Reset"))
        if reset is not None and reset < 10**9:  # some vendors send seconds-until-reset
            reset = int(now) + reset
        return RateLimitInfo(
            limit=_int(h.get("X-RateLimit-Limit")),
            remaining=_int(h.get("X-RateLimit-Remaining")),
            reset_at=float(reset) if reset is not None else None,
            bucket=(h.get("X-RateLimit-Bucket") or "")[:100],
            retry_after=parse_retry_after(h.get("Retry-After"), now),
        )

    def wait_for_rate_limit(self, rate: RateLimitInfo, now: float) -> float | None:
        """How long the vendor asked us to wait: Retry-After, else until X-RateLimit-Reset."""
        if rate.retry_after is not None:
            return rate.retry_after
        if rate.reset_at is not None:
            return max(0.0, rate.reset_at - now) + self.retry_policy.reset_skew
        return None

    def block_until(self, status: int | None, rate: RateLimitInfo, now: float) -> float | None:
        """Unix time before which nothing more may be sent in this provider's block scope."""
        if status == 429:
            wait = self.wait_for_rate_limit(rate, now)
            return now + wait if wait else None
        if rate.remaining == 0 and rate.reset_at is not None and rate.reset_at > now - 1:
            return rate.reset_at + self.retry_policy.reset_skew
        return None

    def backoff(self, retry_number: int) -> float:
        """Seconds before retry n (1-based): base, 2 x base, 4 x base, ... capped, with jitter."""
        p = self.retry_policy
        step = min(p.backoff_cap, p.backoff_base * 2 ** (retry_number - 1))
        return step * (0.5 + random.random() / 2) if p.jitter else step

    def retry_delay(self, attempt: Attempt, now: float | None = None) -> float | None:
        """Seconds to wait before trying again, or None to stop."""
        now = time.time() if now is None else now
        p = self.retry_policy
        if attempt.number >= p.max_attempts:
            return None
        status = attempt.status
        if status == 401:
            return None  # never: vendors lock accounts after 3 to 5 failures (VENDORS.md edge case 7)
        if status is None:
            if attempt.outcome == "throttled" or not p.retry_network:
                return None
            if attempt.maybe_delivered and not attempt.idempotent:
                return None  # the vendor may have acted on it: never repeat a non-idempotent call blindly
            return self.backoff(attempt.number)
        if status == 429:
            if not p.retry_429:
                return None
            wait = self.wait_for_rate_limit(attempt.rate, now)
            return wait if wait is not None else self.backoff(attempt.number)
        if status in p.retry_statuses and attempt.idempotent:
            if attempt.rate.retry_after is not None:
                return attempt.rate.retry_after
            return self.backoff(attempt.number)
        return None

    def throttle_plan(self, *, connection_id: int, fingerprint: str) -> ThrottlePlan:
        """Rules the shared limiter enforces before each attempt; by default none, and a block
        (from Retry-After) that applies to this connection only."""
        return ThrottlePlan(rules=(), block_scope=f"{self.key}:connection:{connection_id}")
