"""What crosses the proxy in each direction.

To the vendor: the application's headers, except hop-by-hop headers (RFC 9110 7.6.1, and any the
Connection header names), its own Authorization and cookies, forwarding headers, Host and
Content-Length (recomputed). The provider then adds the credential.

Back to the application: the vendor's headers except hop-by-hop ones, authentication and cookie
headers, and the framing headers the server sets again (the body is passed on decoded).
"""

from __future__ import annotations

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "proxy-connection"})
REQUEST_DROPPED = HOP_BY_HOP | {"host", "content-length", "authorization", "cookie", "forwarded",
                                "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip",
                                "accept-encoding", "expect"}
RESPONSE_DROPPED = HOP_BY_HOP | {"content-length", "content-encoding", "set-cookie", "set-cookie2",
                                 "www-authenticate", "authorization", "server", "date"}


def _named_by_connection(value: str) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


def outgoing(meta: dict) -> dict[str, str]:
    """The application's request headers to forward, from a WSGI environ."""
    headers: dict[str, str] = {}
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        elif key in ("CONTENT_TYPE",):
            name = "Content-Type"
        else:
            continue
        if value:
            headers[name] = value
    dropped = REQUEST_DROPPED | _named_by_connection(meta.get("HTTP_CONNECTION", ""))
    return {k: v for k, v in headers.items() if k.lower() not in dropped and not k.lower().startswith("x-switchboard")}


def incoming(headers) -> list[tuple[str, str]]:
    """The vendor's response headers to pass back."""
    dropped = RESPONSE_DROPPED | _named_by_connection(headers.get("Connection", ""))
    return [(k, v) for k, v in headers.items() if k.lower() not in dropped]
