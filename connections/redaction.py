"""Redaction of request and response excerpts before they reach a RequestLog row.

Every credential value (and its base64, URL-encoded and JSON-escaped forms, and base64 of
user:password), every Authorization/Cookie-like header and every secret-looking query parameter
is replaced by [REDACTED]. Redaction runs on a generous slice before the excerpt is cut to its
size, so a secret cannot survive half-cut at the edge.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from .providers.base import SECRET_PARAM_NAMES

MASK = "[REDACTED]"
EXCERPT_BYTES = 4096
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
                            "x-auth-token", "x-access-token", "api-key"})


def variants(value: str) -> set[str]:
    forms = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    raw = value.encode()
    for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = enc.decode()
        forms.add(text)
        forms.add(text.rstrip("="))
    return {f for f in forms if f}


@lru_cache(maxsize=512)
def _compile(values: tuple[str, ...]) -> re.Pattern | None:
    forms: set[str] = set()
    for value in values:
        forms |= variants(value)
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))


class Redactor:
    """Replaces every form of the given secret values in a text."""

    def __init__(self, values: Iterable[str] = ()):
        self.values: tuple[str, ...] = tuple(sorted({v for v in values if isinstance(v, str) and v}))
        self._pattern = _compile(self.values)

    def extend(self, values: Iterable[str]) -> Redactor:
        return Redactor(self.values + tuple(values))

    def __call__(self, text: str) -> str:
        if not text or self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def obj(self, value):
        """Redact every string inside a JSON-like value."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value


def redact_url(url: str, redactor: Redactor) -> str:
    parts = urlsplit(url)
    if parts.query:
        pairs = [(k, MASK if k.lower() in SECRET_PARAM_NAMES else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        query = urlencode(pairs, safe="[]")
    else:
        query = ""
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return redactor(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


def header_lines(headers: Mapping[str, str], redactor: Redactor, only: Iterable[str] | None = None) -> list[str]:
    wanted = {h.lower() for h in only} if only is not None else None
    lines = []
    for name, value in headers.items():
        low = name.lower()
        if wanted is not None and low not in wanted and not low.startswith("x-ratelimit"):
            continue
        lines.append(f"{name}: {MASK if low in SECRET_HEADERS else redactor(str(value))}")
    return lines


def body_text(body, limit: int = EXCERPT_BYTES * 4) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body[:limit]
    if isinstance(body, bytes | bytearray):
        return bytes(body[:limit]).decode("utf-8", "replace")
    return "<streamed body>"


def excerpt(head: str, lines: list[str], body, redactor: Redactor, *, size: int = EXCERPT_BYTES,
            total: int | None = None) -> str:
    """A redacted, size-capped text: a first line, headers, a blank line, the body's start."""
    text = head + "\n" + "\n".join(lines)
    content = redactor(body_text(body, size * 4))
    if content:
        text += "\n\n" + content
    if len(text) > size:
        text = text[:size] + f"\n… [cut at {size} characters" + (f"; body was {total} bytes]" if total else "]")
    return text
