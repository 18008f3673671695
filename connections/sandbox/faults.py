"""Faults an operator or a test can inject into any twin (the edge cases of shared/VENDORS.md).

A fault is active until cleared, or for the next `count` requests it applies to. Most faults
apply to every request of the twin; drop_after_refresh and garble_after_refresh only to its refresh
calls, so `count` counts refreshes there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .messages import Response

# name -> {param: default}
GENERIC_FAULTS: dict[str, dict] = {
    "http500_empty": {},  # 500, empty body (VENDORS.md edge case 1: TeleTracker 5xx)
    "html502": {},  # a proxy's HTML error page (edge case 2)
    "slow": {"seconds": 5.0},  # sleep, then answer normally
    "malformed_json": {},  # 200 application/json, truncated body
    "xml_instead_of_json": {},  # 200 application/xml although JSON was asked (edge case 3)
    "html_200_huge": {"size": 2 * 1024 * 1024},  # a 2 MB HTML page with status 200
    "429_no_headers": {},  # 429, empty body, no Retry-After, no rate headers (edge case 4)
    "reset": {},  # close the socket with RST, no answer
}
VENDOR_FAULTS: dict[str, dict] = {
    # Refresh performed for real (token rotated), then the socket is closed without an answer
    # (VENDORS.md edge case 6). Cleanlist and TeleTracker only.
    "drop_after_refresh": {},
    # Refresh performed for real (token rotated), then answered 200 with a body that does not
    # parse: the new token is lost although an answer arrived. Cleanlist and TeleTracker only.
    "garble_after_refresh": {},
    # CloverDX only: accessibilityTest.jsp answers 503 SUSPENDED, REST calls 503 (edge case 8).
    "suspended": {},
    # GitHub only: a secondary rate limit, 403 with Retry-After (the primary headers show room).
    "secondary_rate_limit": {"seconds": 1},
    # Stripe only: 429 with code lock_timeout; a 500 api_error with Stripe-Should-Retry: false.
    "lock_timeout": {},
    "api_error_no_retry": {},
}
ALL_FAULTS = {**GENERIC_FAULTS, **VENDOR_FAULTS}


@dataclass
class Fault:
    name: str
    remaining: int | None  # None: until cleared
    params: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {"fault": self.name, "remaining": self.remaining, **self.params}


def make_fault(name: str, count: int | None, params: dict, extra_faults) -> Fault:
    """Validate and build a fault; ValueError with a readable message when the input is wrong."""
    if name not in GENERIC_FAULTS and name not in extra_faults:
        allowed = sorted(set(GENERIC_FAULTS) | set(extra_faults))
        raise ValueError(f"unknown fault {name!r} for this vendor; known: {', '.join(allowed)}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer or null (until cleared)")
    defaults = ALL_FAULTS[name]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"fault {name!r} takes no parameter(s) {', '.join(unknown)}"
                         + (f"; known: {', '.join(defaults)}" if defaults else ""))
    merged = {**defaults, **params}
    for key, value in merged.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"fault parameter {key} must be a non-negative number")
    if "size" in merged:
        merged["size"] = int(merged["size"])
    return Fault(name, count, merged)


_PROXY_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        "<response><status>ok</status><note>XML although JSON was asked</note></response>\n")


def _huge_html(size: int) -> bytes:
    head = b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body>\n"
    tail = b"\n</body></html>\n"
    filler = b"<p>" + b"x" * 1017 + b"</p>\n"  # 1 KiB per line
    body = head + filler * (max(size - len(head) - len(tail), 0) // len(filler) + 1)
    return body[: max(size - len(tail), 0)] + tail


def fault_response(fault: Fault) -> Response:
    """The canned answer of a fault that replaces the twin's own answer."""
    name = fault.name
    if name == "http500_empty":
        return Response.empty(500)
    if name == "html502":
        return Response.text(502, _PROXY_502, "text/html")
    if name == "malformed_json":
        return Response(200, b'{"data": [{"id": "5f1a2b3c", "name": "Trunc', {"Content-Type": "application/json"})
    if name == "xml_instead_of_json":
        return Response.text(200, _XML, "application/xml")
    if name == "html_200_huge":
        return Response(200, _huge_html(fault.params["size"]), {"Content-Type": "text/html; charset=utf-8"})
    if name == "429_no_headers":
        return Response.empty(429)
    if name == "reset":
        return Response.aborted("reset")
    raise ValueError(f"fault {name!r} has no canned response")  # twin-specific: the twin answers
