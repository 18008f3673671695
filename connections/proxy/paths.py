"""The proxied path: taken from the raw request target, refused when it could leave the connection.

The URL sent is always the connection's base URL + the path, and it is checked again after it is
built (same scheme, host and port as the base URL, under its path). WSGI decodes PATH_INFO, so an
encoded slash (%2F) would be indistinguishable from a real one there: the raw request target
(gunicorn's RAW_URI) is read instead when the server provides it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, urlsplit

from ..outbound import guard

# Escapes that would change how the vendor splits the path: slash, backslash, dot, NUL, %.
_ENCODED = re.compile(r"%(2f|5c|2e|00|25)", re.IGNORECASE)
# What the outbound guard refuses anywhere in a URL: spaces, control characters, a backslash.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


class BadPath(ValueError):
    """Why a proxied path is refused (the message is safe to show the caller)."""


def raw_tail(meta: dict, path_info: str, name: str) -> tuple[str, str]:
    """(path after /proxy/<name>, query string), both as the client sent them (still escaped)."""
    marker = f"/proxy/{name}"
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI") or ""
    if raw:
        if not raw.startswith("/"):
            raise BadPath("absolute URLs in the request line are refused: send the path only")
        raw_path, _, query = raw.partition("?")
        at = raw_path.find(marker)
        if at < 0:
            raise BadPath("the connection's name must be written plainly (no percent-escapes)")
        return raw_path[at + len(marker):], query
    # A server without the raw target (the development server): the decoded path, escaped again.
    at = path_info.find(marker)
    return quote(path_info[at + len(marker):], safe="/:@!$&'()*+,;=-._~"), meta.get("QUERY_STRING", "")


def check_tail(tail: str) -> str:
    """The vendor path ("/..." relative to the connection's base URL), or BadPath."""
    if not tail:
        return "/"
    if not tail.startswith("/"):
        raise BadPath("expected /proxy/<connection>/<path>")
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in tail) or "\\" in tail:
        raise BadPath("the path contains spaces, control characters or a backslash")
    if _ENCODED.search(tail):
        raise BadPath("encoded slashes, backslashes, dots, percent signs or NULs (%2F, %5C, %2E, %25, %00) "
                      "are refused in a proxied path")
    rest = tail[1:]
    if rest.startswith("/") or "://" in rest:
        raise BadPath("the path must be relative to the connection's base URL, not a URL or //host")
    if any(segment in (".", "..") for segment in rest.split("/")):
        raise BadPath("'.' and '..' segments are refused in a proxied path")
    return tail


@lru_cache(maxsize=256)
def _prefix(base_url: str) -> str:
    """The text every URL under `base_url` starts with ("https://host:port/base/"), or "" when the
    base URL is not plain enough to compare as text (a query, a fragment, a URL the guard refuses)."""
    if "?" in base_url or "#" in base_url or _UNSAFE.search(base_url) or not guard.origin(base_url):
        return ""
    return base_url.rstrip("/") + "/"


def check_within(url: str, base_url: str) -> str:
    """"" when `url` stays on the connection's origin and under its base path, else why not.

    A URL that begins with the base URL's own text up to a "/" (the usual case: the provider
    appended the path) has the base's scheme, host and port and lies under its path, with no need
    to parse both; any other URL is parsed and compared."""
    prefix = _prefix(base_url)
    if prefix and url.startswith(prefix) and not _UNSAFE.search(url):
        return ""
    target, base = guard.origin(url), guard.origin(base_url)
    if not target or target != base:
        return f"the proxied URL would leave the connection's host ({base or base_url})"
    base_path = urlsplit(base_url).path.rstrip("/")
    path = urlsplit(url).path
    if base_path and not (path == base_path or path.startswith(base_path + "/")):
        return "the proxied URL would leave the connection's base path"
    return ""
