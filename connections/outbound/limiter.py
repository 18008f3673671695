"""The rate limiter's backend-independent part (throttle.py has the Redis and database backends
and picks one): the permit, the rules' safety margins, and the driver that asks a backend until a
request is admitted, refused, or out of time."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..providers.http import ThrottlePlan

Seed = Callable[[float], "int | None"]

# Pace at 97% of the limit: a 150/s vendor gets 145.5/s, slots 6.9 ms apart, so a one-second window
# the vendor counts holds 4.5 slots of spare room (31 ms of network jitter) before it could overflow.
PACE_MARGIN = 0.97
WINDOW_MARGIN = 0.99


@dataclass
class Permit:
    ok: bool
    waited: float = 0.0
    reason: str = ""  # why refused: blocked | busy | window | pace | stale (a kept credential changed)
    message: str = ""
    blocked_until: float | None = None  # Unix time the refusal lasts until (blocked, window)
    lease_key: str = ""
    lease_id: str = ""


def effective(rule) -> tuple[int, float]:
    """(count, period) actually enforced for a rule, with the safety margins."""
    if rule.kind == "pace":
        return max(1, int(rule.limit)), rule.period / (max(1, rule.limit) * PACE_MARGIN)
    if rule.kind == "window":
        return max(1, int(rule.limit * WINDOW_MARGIN)), rule.period
    return max(1, int(rule.limit)), rule.period


def rules_of(plan: ThrottlePlan):
    """The plan's (concurrency, pace, window) rules, None where it has none."""
    found = {rule.kind: rule for rule in plan.rules}
    return found.get("concurrency"), found.get("pace"), found.get("window")


def block_scope_of(plan: ThrottlePlan) -> str:
    return plan.block_scope or (plan.rules[0].scope if plan.rules else "none")


class Limiter:
    """Backend-independent driver: asks `_try` until admitted, refused, or out of time."""

    poll = 0.002  # seconds between tries while every concurrency slot is taken
    # Whether _try can check a kept credential's generation in the same decision (Redis's script).
    checks_generations = False

    def acquire(self, plan: ThrottlePlan, *, max_wait: float, lease_seconds: float = 60.0,
                seed: Seed | None = None, check: tuple[str, str, int] | None = None,
                meanwhile: Callable[[], None] | None = None) -> Permit:
        """`seed(window_start)`: how many requests the vendor already counted in the window that
        began at `window_start` (Unix seconds), asked only when the limiter lost its own count
        (Redis restarted without persistence); None, or no seed, counts the window as spent.

        `check` (generation key, writing key, generation): admit only while the credential the
        caller kept is current (connections/credgen.py); else a refusal with reason "stale",
        nothing taken, and the caller reads the credential again. A limiter that cannot check
        refuses so too.

        `meanwhile`: work the caller has to do anyway (preparing its request), run while the first
        decision is on its way to Redis and back; a backend without a round trip to overlap may
        not run it (the caller runs it after, if it was not run)."""
        if check is not None and not self.checks_generations:
            return Permit(ok=False, reason="stale")
        if not plan.rules and not plan.block_scope and check is None:
            return Permit(ok=True)
        started = time.monotonic()
        deadline = started + max(0.0, max_wait)
        lease_id = uuid.uuid4().hex
        while True:
            remaining = deadline - time.monotonic()
            ok, reason, wait = self._try(plan, lease_id=lease_id, lease_seconds=lease_seconds,
                                         max_delay=max(0.0, remaining), seed=seed, check=check, meanwhile=meanwhile)
            meanwhile = None
            if ok:
                if wait > 0:
                    time.sleep(wait)
                sem = next((r for r in plan.rules if r.kind == "concurrency"), None)
                return Permit(ok=True, waited=time.monotonic() - started,
                              lease_key=self._sem_key(sem.scope) if sem else "", lease_id=lease_id if sem else "")
            if reason == "stale":
                return Permit(ok=False, waited=time.monotonic() - started, reason="stale")
            remaining = deadline - time.monotonic()
            if reason == "busy":
                if remaining <= 0:
                    limit = next(r.limit for r in plan.rules if r.kind == "concurrency")
                    return Permit(ok=False, waited=time.monotonic() - started, reason="busy",
                                  message=f"{limit} requests already in flight for this vendor's scope; "
                                          f"waited {max_wait:g} s for a free slot")
                time.sleep(min(remaining, self.poll * (0.5 + random.random())))
                continue
            if wait > remaining:
                until = time.time() + wait
                what = {"blocked": "the vendor asked us to wait (Retry-After / X-RateLimit-Reset)",
                        "window": "this window's request budget is spent",
                        "pace": "the request rate budget is booked ahead"}[reason]
                return Permit(ok=False, waited=time.monotonic() - started, reason=reason, blocked_until=until,
                              message=f"not sent: {what}; next slot in {wait:.1f} s, longer than the "
                                      f"{max_wait:g} s this caller may wait")
            time.sleep(wait)

    # -- backend hooks ----------------------------------------------------------
    def _try(self, plan: ThrottlePlan, *, lease_id: str, lease_seconds: float, max_delay: float,
             seed: Seed | None = None, check: tuple[str, str, int] | None = None,
             meanwhile: Callable[[], None] | None = None):
        """(admitted, reason, seconds): admitted with a pace delay, or refused and how long the
        refusal lasts (0 for busy)."""
        raise NotImplementedError

    def _sem_key(self, scope: str) -> str:
        return f"throttle:sem:{scope}"

    def release(self, permit: Permit) -> None:
        raise NotImplementedError

    def block(self, scope: str, seconds: float) -> None:
        """Send nothing in this scope for `seconds` (extends, never shortens, a block)."""
        raise NotImplementedError

    def blocked_until(self, scope: str) -> float | None:
        raise NotImplementedError

    def in_flight(self, scope: str) -> int:
        raise NotImplementedError
