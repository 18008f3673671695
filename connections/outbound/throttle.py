"""The shared rate limiter: every process and machine draws on one budget (Redis or the database).

Three rules, declared by providers (providers/http.py `Rule`):

- pace: at most `limit` per `period` in ANY sliding window. GCRA "virtual scheduling": each
  request reserves the next free slot (slots `period/limit` apart, at 97% of the limit as a
  safety margin for network jitter) and sleeps until it; no burst, so no window can overflow.
- concurrency: at most `limit` in flight, as leases in a sorted set scored by expiry. A process
  that crashes mid-request leaves a lease that expires on its own (timeouts + a margin).
- window: at most `limit` per fixed window aligned to the epoch (Clever's per-minute window),
  at 99% of the limit so a request straddling the vendor's window edge cannot overflow it.

Plus a block per scope ("send nothing before T"), set from Retry-After or X-RateLimit-Reset.

Redis restarted without persistence forgets every count. A marker key (throttle:epoch) records
when the limiter's memory began; a window that began before it has an unknown count, so the
script asks the caller for a seed (the vendor's own count, from the X-RateLimit-Remaining the
connections last stored: connections/outbound/throttle_seed.py) and, without one, counts the window as
spent until it ends (docs/reliability.md, "Limiter state lost").
A request that would wait longer than its caller's `max_wait` is not sent: acquire() returns a
refusal the client records as outcome `throttled`.

With Redis (django.core.cache.backends.redis.RedisCache) every decision is one Lua script, so it
is atomic across processes and machines and uses Redis's clock (no skew between workers).
Without Redis (the embedded default: SQLite) every decision is one short database transaction
(DatabaseLimiter), atomic across every process that shares the database. Why not `limits` or
pyrate-limiter: docs/decisions.md. The backend-independent driver and the permit are limiter.py.
"""

from __future__ import annotations

import os
import threading
import time

import redis
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections

from ..models import ThrottleLease, ThrottleScope
from .commits import fast_commit
from .limiter import Limiter, Permit, block_scope_of, effective, rules_of

# ----------------------------------------------------------------------------- Redis

_ADMIT = """
if #KEYS > 5 then
  -- The caller sends with the credential it kept for this connection (credrows.py): admitted only
  -- while that credential's generation is current and no write to it is under way.
  local gen = redis.call('GET', KEYS[6])
  if (not gen) or gen ~= ARGV[9] or redis.call('EXISTS', KEYS[7]) == 1 then return {0, 'stale', '0'} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local epoch = tonumber(redis.call('GET', KEYS[5]) or '0')
if epoch == 0 then
  epoch = now
  redis.call('SET', KEYS[5], string.format('%d', now))
end
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
  local raw = redis.call('GET', wkey)
  local count = 0
  if raw then
    count = tonumber(raw)
  elseif epoch > wno * period then
    -- This window began before the limiter's memory did (Redis restarted without its data):
    -- what was sent in it so far is unknown. Start from the caller's seed, or ask for one.
    local seed = tonumber(ARGV[8])
    if seed < 0 then return {0, 'unseeded', string.format('%d', wno * period)} end
    count = seed
    redis.call('SET', wkey, string.format('%d', seed), 'PX', math.floor(period / 1000) * 2 + 1000)
  end
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
        self._keys: dict[str, str] = {}
        self._block = self.client.register_script(_BLOCK)
        self._local = threading.local()

    checks_generations = True

    # -- the per-call commands: one connection per thread ------------------------------------
    # acquire's script and release's ZREM run on every outbound call. They go over one Redis
    # connection per thread (made like the pool's, outside it) instead of through the pool and
    # redis-py's command machinery, which cost more than the round trip: no pool lookups, no
    # "has data" probe, and the release (no reply) is ordered before this thread's next decision.

    def _connection(self):
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():  # a forked child never shares its parent's socket
            pool = self.client.connection_pool
            conn = pool.connection_class(**pool.connection_kwargs)
            local.conn, local.pid = conn, os.getpid()
        return conn

    def _run(self, script, keys: list, args: list, meanwhile=None):
        """EVALSHA `script` on this thread's connection; its reply. `meanwhile()` runs once the
        command is sent, before its reply is read. A connection that broke is made again and the
        command sent once more (as redis-py's own retry would); a script Redis does not know
        (restarted) is loaded first."""
        for again in (True, False):
            conn = self._connection()
            try:
                conn.send_packed_command(conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args),
                                         check_health=False)
                if meanwhile is not None:
                    meanwhile, run = None, meanwhile
                    run()
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                script.sha = self.client.script_load(script.script)
                if not again:
                    raise
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                conn.disconnect()
                if not again:
                    raise
            except BaseException:
                conn.disconnect()  # never reuse a connection with a reply left unread
                raise

    def _key(self, name: str) -> str:
        """The cache's key for `name` (prefix, version), made once per name: validating a key costs
        more than the script that uses it."""
        key = self._keys.get(name)
        if key is None:
            key = self.cache.make_and_validate_key(name) if hasattr(self.cache, "make_and_validate_key") \
                else self.cache.make_key(name)
            if len(self._keys) < 10_000:
                self._keys[name] = key
        return key

    def _sem_key(self, scope: str) -> str:
        return self._key(f"throttle:sem:{scope}")

    def _try(self, plan, *, lease_id, lease_seconds, max_delay, seed=None, check=None, meanwhile=None):
        sem, pace, window = rules_of(plan)
        scope = block_scope_of(plan)
        keys = [
            self._key(f"throttle:block:{scope}"),
            self._sem_key(sem.scope if sem else scope),
            self._key(f"throttle:pace:{pace.scope if pace else scope}"),
            self._key(f"throttle:window:{window.scope if window else scope}"),
            self._key("throttle:epoch"),  # when this Redis's limiter state began (see _ADMIT)
        ]
        w_limit, w_period = effective(window) if window else (0, 60.0)
        interval = effective(pace)[1] if pace else 0.0
        args = [
            effective(sem)[0] if sem else 0,
            int(lease_seconds * 1000),
            lease_id,
            int(interval * 1_000_000),
            int(max_delay * 1_000_000),
            w_limit,
            int(w_period * 1_000_000),
            -1,  # no seed: the script asks for one only when it lost the window's count
        ]
        if check is not None:  # (generation key, writing key, generation): see _ADMIT
            keys += [check[0], check[1]]
            args.append(str(check[2]))
        ok, reason, value = self._run(self._admit, keys, args, meanwhile)
        reason = reason.decode() if isinstance(reason, bytes) else reason
        if reason == "unseeded":
            counted = seed(int(value) / 1_000_000) if seed is not None else None
            args[7] = w_limit if counted is None else max(0, int(counted))
            ok, reason, value = self._run(self._admit, keys, args)
            reason = reason.decode() if isinstance(reason, bytes) else reason
        return bool(int(ok)), reason, int(value) / 1_000_000

    def release(self, permit: Permit) -> None:
        """Drop the lease without waiting for Redis's reply: `CLIENT REPLY SKIP` and the ZREM go
        in one write on this thread's connection, and Redis sends no reply to either, so the
        connection stays in step (its next command reads its own reply) and this thread's next
        decision is read after the ZREM. Errors are raised as ever (the caller ignores them: a
        lease left behind expires on its own); a connection that failed mid-write is closed."""
        if not permit.lease_key:
            return
        conn = self._connection()
        try:
            conn.send_packed_command(conn.pack_commands([("CLIENT", "REPLY", "SKIP"),
                                                         ("ZREM", permit.lease_key, permit.lease_id)]),
                                     check_health=False)
        except BaseException:
            conn.disconnect()
            raise

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



# ----------------------------------------------------------------------------- database


class DatabaseLimiter(Limiter):
    """The Redis script's rules as one short transaction per decision on ThrottleScope and
    ThrottleLease rows: the embedded default's limiter (SQLite), and PostgreSQL's without Redis.

    SQLite: BEGIN IMMEDIATE (settings.py) takes the database's write lock, so decisions are
    serialised across every process on the machine. PostgreSQL: the scope rows are locked (FOR
    UPDATE, in scope order: no deadlock) and the clock is the server's, as Redis's is in its
    script. A plan without rules (only a block) is one read. Commits skip the fsync (commits.py):
    this state is worthless after a power cut. Plain SQL: it runs before every outbound request,
    and the ORM's query building was most of its cost (docs/decisions.md, "Shared state").
    """

    poll = 0.005  # each try is a write transaction: poll a full concurrency scope less eagerly

    def __init__(self, using: str = DEFAULT_DB_ALIAS):
        self.using = using
        self.scopes, self.leases = ThrottleScope._meta.db_table, ThrottleLease._meta.db_table

    def _clock(self) -> tuple[str, list]:
        """SQL for "now" in Unix seconds, and its parameters: the server's clock on PostgreSQL,
        this machine's on SQLite (one machine, one clock)."""
        if connections[self.using].vendor == "postgresql":
            return "EXTRACT(EPOCH FROM clock_timestamp())", []
        return "%s", [time.time()]

    def _now(self, cursor) -> float:
        clock, params = self._clock()
        if params:
            return params[0]
        cursor.execute(f"SELECT {clock}")
        return float(cursor.fetchone()[0])

    def _locked_rows(self, cursor, scopes) -> dict[str, dict]:
        """The scopes' rows, created when missing, locked until the transaction ends."""
        names = sorted(set(scopes))
        lock = " FOR UPDATE" if connections[self.using].features.has_select_for_update else ""
        select = (f"SELECT scope, blocked_until, tat, window_number, window_count FROM {self.scopes} "
                  f"WHERE scope IN ({', '.join(['%s'] * len(names))}) ORDER BY scope{lock}")
        cursor.execute(select, names)
        rows = cursor.fetchall()
        if len(rows) < len(names):
            present = {row[0] for row in rows}
            cursor.executemany(f"INSERT INTO {self.scopes} (scope, blocked_until, tat, window_number, window_count) "
                               f"VALUES (%s, 0, 0, 0, 0) ON CONFLICT DO NOTHING",
                               [(name,) for name in names if name not in present])
            cursor.execute(select, names)
            rows = cursor.fetchall()
        fields = ("scope", "blocked_until", "tat", "window_number", "window_count")
        return {row[0]: dict(zip(fields, row, strict=True)) for row in rows}

    def _try(self, plan, *, lease_id, lease_seconds, max_delay, seed=None, check=None, meanwhile=None):
        sem, pace, window = rules_of(plan)
        scope = block_scope_of(plan)
        if not plan.rules:
            with connections[self.using].cursor() as cursor:
                left = self._block_left(cursor, scope)
            return (False, "blocked", left) if left else (True, "ok", 0.0)
        if sem and self.in_flight(sem.scope) >= effective(sem)[0]:
            return False, "busy", 0.0  # known from a read: while every slot is taken, polls take no lock
        with fast_commit(self.using), connections[self.using].cursor() as cursor:
            rows = self._locked_rows(cursor, [scope, *(rule.scope for rule in plan.rules)])
            now = self._now(cursor)
            if rows[scope]["blocked_until"] > now:
                return False, "blocked", rows[scope]["blocked_until"] - now
            if sem:
                cursor.execute(f"SELECT COUNT(*) FROM {self.leases} WHERE scope = %s AND expires_at > %s",
                               [sem.scope, now])
                if cursor.fetchone()[0] >= effective(sem)[0]:
                    return False, "busy", 0.0
            changed = set()
            if window:
                limit, period = effective(window)
                row, number = rows[window.scope], int(now // period)
                count = row["window_count"] if row["window_number"] == number else 0
                if count >= limit:
                    return False, "window", (number + 1) * period - now
                row.update(window_number=number, window_count=count + 1)
                changed.add(window.scope)
            delay = 0.0
            if pace:
                row = rows[pace.scope]
                tat = max(row["tat"], now)
                delay = tat - now
                if delay > max_delay:
                    return False, "pace", delay
                row["tat"] = tat + effective(pace)[1]
                changed.add(pace.scope)
            for name in changed:
                row = rows[name]
                cursor.execute(f"UPDATE {self.scopes} SET tat = %s, window_number = %s, window_count = %s "
                               f"WHERE scope = %s", [row["tat"], row["window_number"], row["window_count"], name])
            if sem:
                cursor.execute(f"INSERT INTO {self.leases} (id, scope, expires_at) VALUES (%s, %s, %s)",
                               [lease_id, sem.scope, now + delay + lease_seconds])
            return True, "ok", delay

    def _sem_key(self, scope: str) -> str:
        return scope

    def release(self, permit: Permit) -> None:
        """Drop the lease, and any of its scope that expired (their processes died holding them)."""
        if permit.lease_key:
            clock, now = self._clock()
            with fast_commit(self.using), connections[self.using].cursor() as cursor:
                cursor.execute(f"DELETE FROM {self.leases} WHERE id = %s OR (scope = %s AND expires_at <= {clock})",
                               [permit.lease_id, permit.lease_key, *now])

    def block(self, scope: str, seconds: float) -> None:
        if seconds <= 0:
            return
        with fast_commit(self.using), connections[self.using].cursor() as cursor:
            row = self._locked_rows(cursor, [scope])[scope]
            until = self._now(cursor) + seconds
            if until > row["blocked_until"]:
                cursor.execute(f"UPDATE {self.scopes} SET blocked_until = %s WHERE scope = %s", [until, scope])

    def _block_left(self, cursor, scope: str) -> float:
        """Seconds left of the scope's block (0 when none)."""
        clock, now = self._clock()
        cursor.execute(f"SELECT blocked_until - {clock} FROM {self.scopes} WHERE scope = %s", [*now, scope])
        row = cursor.fetchone()
        return max(0.0, float(row[0])) if row else 0.0

    def blocked_until(self, scope: str) -> float | None:
        with connections[self.using].cursor() as cursor:
            left = self._block_left(cursor, scope)
        return time.time() + left if left else None

    def in_flight(self, scope: str) -> int:
        clock, now = self._clock()
        with connections[self.using].cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {self.leases} WHERE scope = %s AND expires_at > {clock}",
                           [scope, *now])
            return int(cursor.fetchone()[0])


_limiter: Limiter | None = None
_limiter_lock = threading.Lock()


def get_limiter() -> Limiter:
    """The process's limiter: Redis's when the default cache is Redis, else the database's."""
    global _limiter
    if _limiter is None:
        with _limiter_lock:
            if _limiter is None:
                from django.core.cache.backends.redis import RedisCache

                cache = caches["default"]
                _limiter = RedisLimiter(cache) if isinstance(cache, RedisCache) else DatabaseLimiter()
    return _limiter
