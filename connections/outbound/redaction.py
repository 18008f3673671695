"""Redaction of every text Switchboard stores about a call (request log rows, messages, alert and
rotation errors, audit details).

Only secret values are masked: the credential fields a provider declares secret (passwords,
tokens), the session and refresh tokens an answer carries, and "user:password" for Basic.
User names and account ids are identifiers: shown like fingerprints, never masked.

Each secret is caught in every form a vendor may echo it in, and the forms mix freely inside one
secret (a JSON body with one character \\u-escaped is still caught):
- any letter case (the whole pattern is case-insensitive),
- \\uXXXX JSON escapes (surrogate pairs too), \\/ and \\" escapes, &#NN; and &#xNN; entities,
- percent-encoding of each UTF-8 byte (and "+" for a space),
- hex of the UTF-8 bytes, upper or lower case,
- UTF-16 LE or BE bytes as they look once read as UTF-8 (ASCII secrets: a NUL beside each letter),
- base64 and base64url, padded or not, of the secret at any byte alignment inside a longer
  encoded text (so base64 of "user:secret", a Basic header echoed back, is caught too),
- a truncated secret: a prefix of at least max(MIN_PREFIX, half the secret) characters.

Secrets shorter than MIN_SUBSTRING characters are masked only as whole tokens (not inside a word):
a one-letter password must not turn "empty body" into "em[REDACTED]ty body". Base64 and prefixes
are not searched for them (a few characters of base64 occur everywhere).

Cost: one compiled, case-insensitive alternation per set of secrets (cached: a credential's
pattern is built once per process), run once over each text; the work grows with the number of
secrets, not with the number of encodings times the body size.

Every Authorization/Cookie-like header and every secret-looking query parameter is replaced by
[REDACTED] whatever its value. Redaction runs on a generous slice before the excerpt is cut to its
size, so a secret cannot survive half-cut at the edge.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from ..providers.http import SECRET_PARAM_NAMES

MASK = "[REDACTED]"
EXCERPT_BYTES = 4096
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key",
                            "x-auth-token", "x-access-token", "api-key"})
# Shorter secrets are masked only as whole tokens, never inside a word.
MIN_SUBSTRING = 8
# A truncated secret is caught from this many characters on (and at least half the secret).
MIN_PREFIX = 8
# Characters of a truncated secret beyond its minimum prefix that one match extends over.
_PREFIX_SPAN = 160
# Longer secrets are searched as literal spellings and CHUNK-character pieces (see _long_forms).
LONG_SECRET = 256
CHUNK = 64
_NOT_WORD = "0-9a-z"
_B64_CLASS = {"+": r"(?:[+\-]|%2b)", "-": r"(?:[+\-]|%2b)", "/": r"(?:[/_]|%2f)", "_": r"(?:[/_]|%2f)"}


def _char_atom(ch: str) -> str:
    """Every spelling of one character: itself, JSON and HTML escapes, percent-encoding."""
    cp = ord(ch)
    alts = [re.escape(ch)]
    if cp < 0x10000:
        alts.append(rf"\\u{cp:04x}")
    else:
        high, low = 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF)
        alts.append(rf"\\u{high:04x}\\u{low:04x}")
    alts.append("".join(f"%{b:02x}" for b in ch.encode()))
    alts.append(f"&#0*{cp};")
    alts.append(f"&#x0*{cp:x};")
    if ch in "/\"\\":
        alts.append(re.escape("\\" + ch))
    if ch == " ":
        alts.append(r"\+")
    return "(?:" + "|".join(alts) + ")"


def _sequence(atoms: list[str], minimum: int) -> str:
    """The atoms in order; when minimum < len(atoms), any prefix of at least `minimum` atoms
    matches too (greedy: the longest one present)."""
    if minimum >= len(atoms):
        return "".join(atoms)
    tail = ""
    for atom in reversed(atoms[minimum:minimum + _PREFIX_SPAN]):
        tail = f"(?:{atom}{tail})?"
    body = "".join(atoms[:minimum]) + tail
    if len(atoms) > minimum + _PREFIX_SPAN:
        body = "".join(atoms) + "|" + body  # a long secret in full, before its prefixes
    return body


def _base64_cores(raw: bytes) -> list[tuple[str, set[str]]]:
    """The base64 characters that encode `raw` whatever bytes come before and after it, at each of
    the three alignments; "+/" and "-_" (base64url) are interchangeable. With the characters a
    match can start with."""
    cores = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode().rstrip("=")
        lead = -(-shift * 8 // 6)
        full = (shift + len(raw)) * 8 // 6
        core = encoded[lead:full]
        if len(core) >= MIN_SUBSTRING:
            firsts = {"+", "-", "%"} if core[0] in "+-" else {"/", "_", "%"} if core[0] in "/_" else _first(core[0])
            cores.append(("".join(_B64_CLASS.get(c) or re.escape(c) for c in core), firsts))
    return cores


def _first(*chars: str) -> set[str]:
    return {c for ch in chars for c in (ch.lower(), ch.upper())}


_ESCAPE_FIRSTS = {"\\", "%", "&"}
_GAP = "[\\x00\\ufffd]"


@lru_cache(maxsize=2048)
def _forms(value: str, truncatable: bool) -> tuple[tuple[str, frozenset[str]], ...]:
    """The regex sources matching every form of one secret value, by family (spellings of the
    characters, hex, base64), each with the characters a match can start with."""
    raw = value.encode()
    if len(value) > LONG_SECRET:
        return _long_forms(value)
    short = len(value) < MIN_SUBSTRING
    minimum = len(value) if short or not truncatable else max(MIN_PREFIX, len(value) // 2)
    byte_min = len(raw) if minimum == len(value) else max(MIN_PREFIX, len(raw) // 2)
    chars = [_sequence([_char_atom(c) for c in value], minimum)]
    firsts = _first(value[0]) | _ESCAPE_FIRSTS
    if value.isascii():
        chars.append(_sequence([re.escape(c) + _GAP for c in value], minimum))
        chars.append(_sequence([_GAP + re.escape(c) for c in value], minimum))
        firsts |= {"\x00", "\ufffd"}
    hexed = _sequence([f"{b:02x}" for b in raw], byte_min)
    if short:
        chars = [f"(?<![{_NOT_WORD}])(?:{f})(?![{_NOT_WORD}])" for f in chars]
        hexed = f"(?<![{_NOT_WORD}])(?:{hexed})(?![{_NOT_WORD}])"
    families = [("|".join(chars), frozenset(firsts)), (hexed, frozenset(_first(f"{raw[0]:02x}"[0])))]
    if not short:
        cores = _base64_cores(raw)
        if cores:
            families.append(("|".join(src for src, _ in cores), frozenset().union(*(f for _, f in cores))))
    return tuple(families)


def _long_forms(value: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """A secret longer than LONG_SECRET: whole spellings as literals (building per-character
    alternatives for 16 KB costs seconds), and every CHUNK characters of it on their own, so a
    truncated echo shows less than CHUNK characters of it."""
    raw = value.encode()
    spellings = {value, "".join(rf"\u{ord(c):04x}" for c in value), "".join(f"%{b:02x}" for b in raw),
                 quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    if value.isascii():
        spellings |= {value.encode("utf-16-le").decode(), value.encode("utf-16-be").decode()}
    chunks = {value[i:i + CHUNK] for i in range(0, len(value) - CHUNK + 1, CHUNK)} | {value[-CHUNK:]}
    literals = sorted(spellings, key=len, reverse=True) + sorted(chunks)
    firsts = set().union(*(_first(s[0]) for s in literals))
    cores = _base64_cores(raw)
    return (("|".join(map(re.escape, literals)), frozenset(firsts)),
            (re.escape(raw.hex()), frozenset(_first(raw.hex()[0]))),
            ("|".join(src for src, _ in cores), frozenset().union(*(f for _, f in cores))))


@lru_cache(maxsize=512)
def _compile(values: tuple[str, ...], whole: tuple[str, ...]) -> tuple[re.Pattern, ...]:
    """One pattern per family for all the values; each starts with a look-ahead at the characters
    a match can start with, so the regex engine skips the rest of the text at C speed."""
    families: dict[int, tuple[list[str], set[str]]] = {}
    for forms in [_forms(v, True) for v in values] + [_forms(v, False) for v in whole]:
        for i, (src, firsts) in enumerate(forms):
            srcs, chars = families.setdefault(i, ([], set()))
            srcs.append(src)
            chars |= firsts
    return tuple(re.compile(f"(?=[{''.join(map(_class_char, sorted(chars)))}])(?:{'|'.join(srcs)})", re.IGNORECASE)
                 for srcs, chars in families.values() if srcs)


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in "\\]^-[" else ch


class Redactor:
    """Replaces every form of the given secret values in a text.

    `values` are secrets (caught truncated too); `whole` are composites such as "user:password"
    that are caught only in full (a prefix of one would be the user name)."""

    def __init__(self, values: Iterable[str] = (), whole: Iterable[str] = ()):
        self.values: tuple[str, ...] = _distinct(values)
        self.whole: tuple[str, ...] = tuple(v for v in _distinct(whole) if v not in self.values)
        self._patterns = _compile(self.values, self.whole)

    def extend(self, values: Iterable[str], whole: Iterable[str] = ()) -> Redactor:
        return Redactor(self.values + tuple(values), self.whole + tuple(whole))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for pattern in self._patterns:
            text = pattern.sub(MASK, text)
        return text

    def obj(self, value):
        """Redact every string inside a JSON-like value (keys too)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value


def _distinct(values: Iterable[str]) -> tuple[str, ...]:
    # Longest first: when two secrets overlap, the longer one is masked whole.
    return tuple(sorted({v for v in values if isinstance(v, str) and v}, key=lambda v: (-len(v), v)))


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
