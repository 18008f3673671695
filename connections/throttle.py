"""The shared rate limiter: every process and machine draws on one budget through the cache.

Three rules, declared by providers (providers/base.py `Rule`):

- pace: at most `limit` per `period` in ANY sliding window. GCRA "virtual scheduling": each
  request reserves the next free slot (slots `period/limit` apart, at 95% of the limit as a
  safety margin for network jitter) and sleeps until it; no burst, so no window can overflow.
- concurrency: at most `limit` in flight, as leases in a sorted set scored by expiry. A process
  that crashes mid-request leaves a lease that expires on its own (timeouts + a margin).
- window: at most `limit` per fixed window aligned to the epoch (Clever's per-minute window),
  at 99% of the limit so a request straddling the vendor's window edge cannot overflow it.

Plus a block per scope ("send nothing before T"), set from Retry-After or X-RateLimit-Reset.
A request that would wait longer than its caller's `max_wait` is not sent: acquire() returns a
refusal the client records as outcome `throttled`.

With Redis (django.core.cache.backends.redis.RedisCache) every decision is one Lua script, so it
is atomic across processes and machines and uses Redis's clock (no skew between workers). With
the local-memory cache (the embedded single-machine default) a lock gives the same rules within
one process. Why not `limits` or pyrate-limiter: docs/decisions.md.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass

from django.core.cache import caches

from .providers.base import ThrottlePlan

PACE_MARGIN = 0.95
WINDOW_MARGIN = 0.99
_POLL = 0.002  # seconds between tries while every concurrency slot is taken


@dataclass
class Permit:
    ok: bool
    waited: float = 0.0
    reason: str = ""  # why refused: blocked | busy | window | pace
    message: str = ""
    blocked_until: float | None = None  # Unix time the refusal lasts until (blocked, window)
    lease_key: str = ""
    lease_id: str = ""


def _effective(rule) -> tuple[int, float]:
    """(count, period) actually enforced for a rule, with the safety margins."""
    if rule.kind == "pace":
        return max(1, int(rule.limit)), rule.period / (max(1, rule.limit) * PACE_MARGIN)
    if rule.kind == "window":
        return max(1, int(rule.limit * WINDOW_MARGIN)), rule.period
    return max(1, int(rule.limit)), rule.period


class Limiter:
    """Backend-independent driver: asks `_try` until admitted, refused, or out of time."""

    def acquire(self, plan: ThrottlePlan, *, max_wait: float, lease_seconds: float = 60.0) -> Permit:
        if not plan.rules and not plan.block_scope:
            return Permit(ok=True)
        started = time.monotonic()
        deadline = started + max(0.0, max_wait)
        lease_id = uuid.uuid4().hex
        while True:
            remaining = deadline - time.monotonic()
            ok, reason, wait = self._try(plan, lease_id=lease_id, lease_seconds=lease_seconds,
                                         max_delay=max(0.0, remaining))
            if ok:
                if wait > 0:
                    time.sleep(wait)
                sem = next((r for r in plan.rules if r.kind == "concurrency"), None)
                return Permit(ok=True, waited=time.monotonic() - started,
                              lease_key=self._sem_key(sem.scope) if sem else "", lease_id=lease_id if sem else "")
            remaining = deadline - time.monotonic()
            if reason == "busy":
                if remaining <= 0:
                    limit = next(r.limit for r in plan.rules if r.kind == "concurrency")
                    return Permit(ok=False, waited=time.monotonic() - started, reason="busy",
                                  message=f"{limit} requests already in flight for this vendor's scope; "
                                          f"waited {max_wait:g} s for a free slot")
                time.sleep(min(remaining, _POLL * (0.5 + random.random())))
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
    def _try(self, plan: ThrottlePlan, *, lease_id: str, lease_seconds: float, max_delay: float):
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


# ----------------------------------------------------------------------------- Redis

_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local blocked = tonumber(redis.call('GET', KEYS[1]) or '0')
if blocked > now then return {0, 'blocked', tostring(blocked - now)} end
local sem_limit = tonumber(ARGV[1])
if sem_limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= sem_limit then return {0, 'busy', '0'} end
end
local wlimit = tonumber(ARGV[6])
local wkey = ''
if wlimit > 0 then
  local period = tonumber(ARGV[7])
  local wno = math.floor(now / period)
  wkey = KEYS[4] .. ':' .. string.format('%d', wno)
  local count = tonumber(redis.call('GET', wkey) or '0')
  if count >= wlimit then return {0, 'window', string.format('%d', (wno + 1) * period - now)} end
end
local interval = tonumber(ARGV[4])
local delay = 0
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[3]) or '0')
  if tat < now then tat = now end
  delay = tat - now
  if delay > tonumber(ARGV[5]) then return {0, 'pace', string.format('%d', delay)} end
  redis.call('SET', KEYS[3], string.format('%d', tat + interval), 'PX', math.floor((delay + interval) / 1000) + 1000)
end
if sem_limit > 0 then
  redis.call('ZADD', KEYS[2], string.format('%d', now + delay + tonumber(ARGV[2]) * 1000), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], math.floor(delay / 1000) + tonumber(ARGV[2]) + 1000)
end
if wlimit > 0 then
  redis.call('INCR', wkey)
  redis.call('PEXPIRE', wkey, math.floor(tonumber(ARGV[7]) / 1000) * 2 + 1000)
end
return {1, 'ok', string.format('%d', delay)}
"""

_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > cur then
  redis.call('SET', KEYS[1], string.format('%d', untl), 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1000)
end
return string.format('%d', math.max(untl, cur) - now)
"""


class RedisLimiter(Limiter):
    def __init__(self, cache):
        self.cache = cache
        self.client = cache._cache.get_client(write=True)
        self._admit = self.client.register_script(_ADMIT)
        self._block = self.client.register_script(_BLOCK)

    def _key(self, name: str) -> str:
        return self.cache.make_and_validate_key(name) if hasattr(self.cache, "make_and_validate_key") \
            else self.cache.make_key(name)

    def _sem_key(self, scope: str) -> str:
        return self._key(f"throttle:sem:{scope}")

    def _try(self, plan, *, lease_id, lease_seconds, max_delay):
        sem = pace = window = None
        for rule in plan.rules:
            if rule.kind == "concurrency":
                sem = rule
            elif rule.kind == "pace":
                pace = rule
            elif rule.kind == "window":
                window = rule
        scope = plan.block_scope or (plan.rules[0].scope if plan.rules else "none")
        keys = [
            self._key(f"throttle:block:{scope}"),
            self._sem_key(sem.scope if sem else scope),
            self._key(f"throttle:pace:{pace.scope if pace else scope}"),
            self._key(f"throttle:window:{window.scope if window else scope}"),
        ]
        w_limit, w_period = _effective(window) if window else (0, 60.0)
        interval = _effective(pace)[1] if pace else 0.0
        args = [
            _effective(sem)[0] if sem else 0,
            int(lease_seconds * 1000),
            lease_id,
            int(interval * 1_000_000),
            int(max_delay * 1_000_000),
            w_limit,
            int(w_period * 1_000_000),
        ]
        ok, reason, value = self._admit(keys=keys, args=args)
        reason = reason.decode() if isinstance(reason, bytes) else reason
        return bool(int(ok)), reason, int(value) / 1_000_000

    def release(self, permit: Permit) -> None:
        if permit.lease_key:
            self.client.zrem(permit.lease_key, permit.lease_id)

    def block(self, scope: str, seconds: float) -> None:
        if seconds > 0:
            self._block(keys=[self._key(f"throttle:block:{scope}")], args=[int(seconds * 1_000_000)])

    def blocked_until(self, scope: str) -> float | None:
        raw = self.client.get(self._key(f"throttle:block:{scope}"))
        if not raw:
            return None
        sec, usec = self.client.time()
        now = sec + usec / 1_000_000
        until = int(raw) / 1_000_000
        return time.time() + (until - now) if until > now else None

    def in_flight(self, scope: str) -> int:
        sec, usec = self.client.time()
        key = self._sem_key(scope)
        self.client.zremrangebyscore(key, "-inf", sec * 1_000_000 + usec)
        return int(self.client.zcard(key))


# ----------------------------------------------------------------------------- local memory


class LocalLimiter(Limiter):
    """One process only (the embedded default uses the local-memory cache): a lock and dicts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.blocks: dict[str, float] = {}
        self.leases: dict[str, dict[str, float]] = {}
        self.tat: dict[str, float] = {}
        self.windows: dict[str, tuple[int, int]] = {}

    def _try(self, plan, *, lease_id, lease_seconds, max_delay):
        now = time.time()
        with self.lock:
            scope = plan.block_scope or (plan.rules[0].scope if plan.rules else "none")
            blocked = self.blocks.get(scope, 0.0)
            if blocked > now:
                return False, "blocked", blocked - now
            sem = next((r for r in plan.rules if r.kind == "concurrency"), None)
            if sem:
                leases = self.leases.setdefault(sem.scope, {})
                for key in [k for k, exp in leases.items() if exp <= now]:
                    del leases[key]
                if len(leases) >= _effective(sem)[0]:
                    return False, "busy", 0.0
            window = next((r for r in plan.rules if r.kind == "window"), None)
            if window:
                limit, period = _effective(window)
                number = int(now // period)
                seen, count = self.windows.get(window.scope, (number, 0))
                count = count if seen == number else 0
                if count >= limit:
                    return False, "window", (number + 1) * period - now
            pace = next((r for r in plan.rules if r.kind == "pace"), None)
            delay = 0.0
            if pace:
                interval = _effective(pace)[1]
                tat = max(self.tat.get(pace.scope, 0.0), now)
                delay = tat - now
                if delay > max_delay:
                    return False, "pace", delay
                self.tat[pace.scope] = tat + interval
            if sem:
                self.leases[sem.scope][lease_id] = now + delay + lease_seconds
            if window:
                self.windows[window.scope] = (number, count + 1)
            return True, "ok", delay

    def _sem_key(self, scope: str) -> str:
        return scope

    def release(self, permit: Permit) -> None:
        if permit.lease_key:
            with self.lock:
                self.leases.get(permit.lease_key, {}).pop(permit.lease_id, None)

    def block(self, scope: str, seconds: float) -> None:
        with self.lock:
            self.blocks[scope] = max(self.blocks.get(scope, 0.0), time.time() + seconds)

    def blocked_until(self, scope: str) -> float | None:
        until = self.blocks.get(scope)
        return until if until and until > time.time() else None

    def in_flight(self, scope: str) -> int:
        now = time.time()
        with self.lock:
            return sum(1 for exp in self.leases.get(scope, {}).values() if exp > now)


_limiter: Limiter | None = None
_limiter_lock = threading.Lock()


def get_limiter() -> Limiter:
    """The process's limiter: Redis-backed when the default cache is Redis, else local."""
    global _limiter
    if _limiter is None:
        with _limiter_lock:
            if _limiter is None:
                from django.core.cache.backends.redis import RedisCache

                cache = caches["default"]
                _limiter = RedisLimiter(cache) if isinstance(cache, RedisCache) else LocalLimiter()
    return _limiter


def reset_limiter() -> None:
    """Forget the process's limiter (tests that switch caches)."""
    global _limiter
    _limiter = None
