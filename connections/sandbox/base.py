"""Shared machinery of the vendor twins: stats, token store, fault handling, routing.

A twin is a `Vendor` subclass that declares `routes` and overrides small hooks (`handle`,
`error`, `is_refresh`, `add_credentials`, `extra_stats`, `reset_state`). Everything here is
standard library only, so the sandbox runs in any process (no Django).
"""

from __future__ import annotations

import re
import sys
import threading
import time
import traceback
from collections import Counter, deque

from .faults import Fault, fault_response, make_fault
from .messages import Request, Response, new_secret

# Faults that let a refresh happen for real and then spoil its answer (refresh calls only).
AFTER_REFRESH = ("drop_after_refresh", "garble_after_refresh")

# --------------------------------------------------------------------------- stats


class Stats:
    """Counters of one twin. Callers hold the vendor's lock."""

    def __init__(self):
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self.dropped = 0  # connections closed without an answer (faults reset / drop_after_refresh)
        self.rate_limited = 0
        self.in_flight: dict[str, int] = {}  # per client IP (Cleverbridge's concurrency rule)
        # In flight at the twin from every client, and the most since reset: from the moment the
        # twin takes a request (after its body is read) until its answer is ready to be written,
        # the slow fault's delay included. Not the write itself: a client may already hold the
        # answer and send its next request before this thread counts the departure, and such an
        # overlap would be counted though the client never had more in flight.
        self.total_in_flight = 0
        self.max_in_flight = 0
        self.recent: dict[str, deque[float]] = {}  # per IP: arrival times within the last 1.0 s
        self.max_per_second = 0
        self.refresh_calls: list[dict] = []
        self.rescinded_token_uses = 0

    def arrive(self, ip: str, now: float) -> tuple[int, int]:
        """Count an arrival; return (in flight, requests in the last 1.0 s) for this IP."""
        self.requests += 1
        in_flight = self.in_flight.get(ip, 0) + 1
        self.in_flight[ip] = in_flight
        self.total_in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.total_in_flight)
        # Exact sliding window: the max over all 1.0 s windows is reached by one that ends at
        # an arrival, so counting arrivals in (now - 1.0, now] at each arrival is exact.
        window = self.recent.setdefault(ip, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        window.append(now)
        self.max_per_second = max(self.max_per_second, len(window))
        return in_flight, len(window)

    def depart(self, ip: str, response: Response) -> None:
        self.in_flight[ip] -= 1
        self.total_in_flight -= 1
        if response.abort:
            self.dropped += 1
            return
        self.by_status[response.status] += 1
        if response.status == 429:
            self.rate_limited += 1

    def snapshot(self, *, refreshes: bool) -> dict:
        out = {
            "requests": self.requests,
            "by_status": dict(sorted(self.by_status.items())),
            "dropped": self.dropped,
            "max_in_flight": self.max_in_flight,
            "in_flight_now": sum(self.in_flight.values()),
            "max_per_second": self.max_per_second,
            "rate_limited": self.rate_limited,
        }
        if refreshes:
            out["refresh_calls"] = [dict(call) for call in self.refresh_calls]
            out["rescinded_token_uses"] = self.rescinded_token_uses
        return out


class TokenStore:
    """Live tokens with their metadata, plus the rescinded ones (rescinding is irrevocable)."""

    def __init__(self):
        self.live: dict[str, dict] = {}
        self.rescinded: set[str] = set()

    def add(self, token: str, **meta) -> str:
        self.rescinded.discard(token)
        self.live[token] = meta
        return token

    def issue(self, prefix: str = "", **meta) -> str:
        return self.add(new_secret(prefix), **meta)

    def get(self, token: str) -> dict | None:
        return self.live.get(token)

    def rescind(self, token: str) -> dict | None:
        meta = self.live.pop(token, None)
        self.rescinded.add(token)
        return meta

    def is_rescinded(self, token: str) -> bool:
        return token in self.rescinded


# --------------------------------------------------------------------------- the vendor base


class Vendor:
    """Base of the five twins. All of a twin's state is guarded by `self.lock`."""

    name = ""
    # (method, path regex, handler method name); named groups are passed as keyword arguments.
    routes: tuple[tuple[str, str, str], ...] = ()
    # Faults only this twin understands, beyond faults.GENERIC_FAULTS.
    extra_faults: frozenset[str] = frozenset()
    # Attributes an operator may tune (Python or POST /_sandbox/<vendor>/config); kept by reset().
    settings: tuple[str, ...] = ()
    # Rescind-on-refresh twins add refresh_calls and rescinded_token_uses to their stats.
    refreshes = False

    def __init__(self):
        self.lock = threading.RLock()
        self.clock = time.time  # wall clock (token expiry, Clever windows); tests may replace it
        self.reset()

    # ----- hooks -----------------------------------------------------------------------

    def reset_state(self) -> None:
        """Credentials and vendor state back to the defaults."""

    def handle(self, req: Request) -> Response:
        """Answer a request (called with the lock held). Default: the route table."""
        return self.route(req)

    def error(self, req: Request, status: int, message: str, **extra) -> Response:
        """An error in this vendor's envelope."""
        return Response.json(status, {"message": message, **extra})

    def is_refresh(self, req: Request) -> bool:
        """Is this a token refresh call (the only requests fault drop_after_refresh hits)?"""
        return False

    def add_credentials(self, data: dict) -> None:
        raise ValueError(f"{self.name} takes no credentials")

    def extra_stats(self) -> dict:
        return {}

    # ----- machinery ------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self._stats = Stats()
            self._fault: Fault | None = None
            self.reset_state()

    def route(self, req: Request) -> Response:
        allowed = []
        for method, pattern, handler in self.routes:
            match = re.fullmatch(pattern, req.path)
            if match:
                if method == req.method:
                    return getattr(self, handler)(req, **match.groupdict())
                allowed.append(method)
        if allowed:
            resp = self.error(req, 405, f"method {req.method} not allowed here")
            resp.headers["Allow"] = ", ".join(allowed)
            return resp
        return self.not_found(req)

    def not_found(self, req: Request) -> Response:
        return self.error(req, 404, f"no such endpoint: {req.method} {req.path}")

    def dispatch(self, req: Request) -> Response:
        """Count the request, apply any fault, answer. Never raises."""
        with self.lock:
            stats = self._stats  # a request that straddles reset() is counted in the old stats
            req.in_flight, req.per_second = stats.arrive(req.client_ip, time.monotonic())
            fault = self._take_fault(req)
        try:
            resp = self._answer(req, fault)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            resp = Response.text(500, "sandbox internal error (see the sandbox's stderr)\n")
        with self.lock:
            stats.depart(req.client_ip, resp)
        return resp

    def _answer(self, req: Request, fault: Fault | None) -> Response:
        name = fault.name if fault else None
        if name not in (None, "slow", *AFTER_REFRESH):
            return self.fault_response(fault, req)  # the fault answers instead of the twin
        if name == "slow":
            time.sleep(fault.params["seconds"])  # outside the lock: other requests go on
        with self.lock:
            resp = self.handle(req)
        if name == "drop_after_refresh":
            return Response.aborted("close")  # the refresh really happened; the answer never leaves
        if name == "garble_after_refresh":
            # The refresh really happened; its answer is cut off before the new token (so no part of
            # a live secret is in it) and does not parse.
            cut = resp.body.find(b"token")
            return Response(200, resp.body[: cut if cut > 0 else 1], {"Content-Type": "application/json"})
        return resp

    def fault_response(self, fault: Fault, req: Request) -> Response:
        return fault_response(fault)

    def _take_fault(self, req: Request) -> Fault | None:
        fault = self._fault
        if fault is None or (fault.name in AFTER_REFRESH and not self.is_refresh(req)):
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._fault = None
        return fault

    def set_fault(self, fault: str | None, count: int | None = None, **params) -> None:
        if fault is None:
            self.clear_fault()
            return
        made = make_fault(fault, count, params, self.extra_faults)
        with self.lock:
            self._fault = made

    def clear_fault(self) -> None:
        with self.lock:
            self._fault = None

    def configure(self, **values) -> dict:
        unknown = sorted(set(values) - set(self.settings))
        if unknown:
            raise ValueError(f"unknown setting(s) for {self.name}: {', '.join(unknown)}; "
                             f"known: {', '.join(self.settings) or 'none'}")
        with self.lock:
            for key, value in values.items():
                current = getattr(self, key)
                if isinstance(current, bool):
                    if not isinstance(value, bool):
                        raise ValueError(f"{key} must be true or false")
                elif isinstance(current, (int, float)):
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                        raise ValueError(f"{key} must be a non-negative number")
                setattr(self, key, value)
            return self.current_settings()

    def current_settings(self) -> dict:
        return {key: getattr(self, key) for key in self.settings}

    def stats(self) -> dict:
        with self.lock:
            out = {"vendor": self.name, **self._stats.snapshot(refreshes=self.refreshes)}
            out["fault"] = self._fault.describe() if self._fault else None
            out["settings"] = self.current_settings()
            out.update(self.extra_stats())
            return out

    # ----- helpers for rescind-on-refresh twins (callers hold the lock) ------------------

    def record_refresh(self, *, token_was_current: bool, rotated: bool) -> None:
        self._stats.refresh_calls.append(
            {"at": self.clock(), "token_was_current": token_was_current, "rotated": rotated})

    def note_rescinded_use(self) -> None:
        self._stats.rescinded_token_uses += 1


def require_strings(data: dict, *names: str) -> list[str]:
    """The named non-empty string fields of a credentials object, or ValueError."""
    if not isinstance(data, dict):
        raise ValueError("credentials must be a JSON object")
    missing = [n for n in names if not isinstance(data.get(n), str) or not data.get(n)]
    if missing:
        raise ValueError(f"credentials need non-empty string field(s): {', '.join(missing)}")
    return [data[n] for n in names]
