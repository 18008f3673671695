"""The control API under /_sandbox/, for other processes and the browser demo.

    GET  /_sandbox/                        index: vendors, base URLs, faults, endpoints
    POST /_sandbox/reset                   every twin back to its defaults
    POST /_sandbox/<vendor>/reset          one twin back to its defaults
    POST /_sandbox/<vendor>/fault          {"fault": name or null, "count": N or null, ...params}
    GET  /_sandbox/<vendor>/stats          the twin's stats since reset (JSON; by_status keys are strings;
                                           max_in_flight: most requests in flight at once, all clients)
    POST /_sandbox/<vendor>/credentials    add or replace credentials (shape per vendor)
    GET  /_sandbox/<vendor>/config         the twin's tunable settings
    POST /_sandbox/<vendor>/config         {"setting": value, ...}; answers the new settings

Answers are JSON; a bad request is 400 {"error": "..."}, an unknown vendor or path 404.
"""

from __future__ import annotations

import json
from typing import Protocol

from .base import Vendor
from .faults import ALL_FAULTS, GENERIC_FAULTS
from .messages import Response


class SandboxServer(Protocol):
    """What the control API needs of the server (server.py implements it; it imports this module,
    so this one does not import it back)."""

    vendors: dict[str, Vendor]

    def base_url(self, vendor: str) -> str: ...

    def reset(self) -> None: ...

ENDPOINTS = [line.strip() for line in __doc__.splitlines() if line.strip().startswith(("GET ", "POST "))]


def _error(status: int, message: str) -> Response:
    return Response.json(status, {"error": message})


def _body(raw: bytes) -> dict:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def index(sandbox: SandboxServer) -> dict:
    return {
        "sandbox": "Switchboard vendor twins",
        "vendors": {
            name: {"base_url": sandbox.base_url(name),
                   "faults": sorted(set(GENERIC_FAULTS) | set(vendor.extra_faults)),
                   "settings": vendor.current_settings()}
            for name, vendor in sandbox.vendors.items()
        },
        "faults": {name: params for name, params in ALL_FAULTS.items()},
        "endpoints": ENDPOINTS,
    }


def handle(sandbox: SandboxServer, method: str, path: str, raw_body: bytes) -> Response:
    parts = [p for p in path.split("/") if p]
    try:
        body = _body(raw_body) if method == "POST" else {}
        return _route(sandbox, method, parts, body)
    except ValueError as exc:
        return _error(400, str(exc))


def _route(sandbox: SandboxServer, method: str, parts: list[str], body: dict) -> Response:
    if not parts:
        return Response.json(200, index(sandbox)) if method == "GET" else _error(405, "use GET")
    if parts == ["reset"]:
        if method != "POST":
            return _error(405, "use POST")
        sandbox.reset()
        return Response.json(200, {"ok": True})
    if len(parts) != 2 or parts[0] not in sandbox.vendors:
        return _error(404, f"no control endpoint /_sandbox/{'/'.join(parts)}; see GET /_sandbox/")
    vendor = sandbox.vendors[parts[0]]
    action = (method, parts[1])
    if action == ("GET", "stats"):
        return Response.json(200, vendor.stats())
    if action == ("POST", "fault"):
        params = dict(body)
        fault, count = params.pop("fault", None), params.pop("count", None)
        vendor.set_fault(fault, count, **params)
        return Response.json(200, {"ok": True, "fault": vendor.stats()["fault"]})
    if action == ("POST", "credentials"):
        vendor.add_credentials(body)
        return Response.json(200, {"ok": True})
    if action == ("GET", "config"):
        return Response.json(200, vendor.current_settings())
    if action == ("POST", "config"):
        return Response.json(200, vendor.configure(**body))
    if action == ("POST", "reset"):
        vendor.reset()
        return Response.json(200, {"ok": True})
    return _error(404, f"no control endpoint {method} /_sandbox/{'/'.join(parts)}; see GET /_sandbox/")
