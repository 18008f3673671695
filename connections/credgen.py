"""Credential generations: the Redis keys that tell every process when a connection's credentials
changed, so the outbound call may keep the active credential in process memory
(connections/outbound/credrows.py) and still never send a stale one after a rotation (docs/performance.md).

Per connection, two keys in the Django cache's Redis, under its key prefix:

    credential:gen:<connection id>      a counter: changes on every write to its Credential rows
    credential:writing:<connection id>  writes begun and not yet committed (expires: PENDING_MS)

Every write to the Credential table bumps both BEFORE its statement (`begin`: the counter +1,
writing +1) and again once its transaction commits (`end`, on transaction.on_commit: the counter
+1, writing -1). A reader reads both keys in one round trip (MGET) before it reads the database,
and keeps what it read only while nothing is being written (writing absent): so it can never
keep a row read before a commit it did not see; the second bump makes it read again after the
commit all the same. A write that never commits (rolled back) leaves `writing` set until it
expires: the connection's calls read the database meanwhile, slower but never stale.

Bumps are hard to forget: CredentialQuerySet (querysets.py) wraps update, delete, bulk_create and
bulk_update; pre/post_save and pre/post_delete cover save(), create() and cascades (connected in
models/__init__.py). Only raw SQL on the table escapes them (none outside migrations).

A missing counter (Redis restarted without its data, or evicted) never means "unchanged": the
reader sets it to Redis's clock in microseconds (SET NX, one more round trip) and reads the
database; any value a process kept from before the restart is far below that clock, so it cannot
come back by counting up. A writer that finds it missing starts from the clock too.

Without Redis (the embedded default: a database cache; locmem) nothing here does anything and
the outbound call reads the database on every call. A bump that fails (Redis unreachable) is
logged and the write goes on: readers that cannot reach Redis read the database; a reader that
can while the writer could not is covered by the readers' maximum age (credrows.MAX_AGE).
"""

from __future__ import annotations

import logging
import threading

from django.core.cache import caches
from django.db import transaction

log = logging.getLogger(__name__)

# How long a begun write keeps readers on the database when its transaction never commits (a
# rollback): longer than any transaction that writes credentials (none waits for a vendor).
PENDING_MS = 120_000

_BUMP = """
local phase = ARGV[1]
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', KEYS[i], string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])))
  end
  redis.call('INCR', KEYS[i])
  if phase == 'begin' then
    redis.call('INCR', KEYS[i + 1])
    redis.call('PEXPIRE', KEYS[i + 1], ARGV[2])
  else
    local n = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
    if n <= 1 then redis.call('DEL', KEYS[i + 1]) else redis.call('DECR', KEYS[i + 1]) end
  end
end
return 1
"""

_START = """
local t = redis.call('TIME')
redis.call('SET', KEYS[1], string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])), 'NX')
return redis.call('MGET', KEYS[1], KEYS[2])
"""


class Generations:
    """The generation keys in one Redis (the default cache's, under its key prefix)."""

    def __init__(self, cache):
        self.cache = cache
        self.client = cache._cache.get_client(write=True)
        self._bump = self.client.register_script(_BUMP)
        self._start = self.client.register_script(_START)
        self._keys: dict[int, tuple[str, str]] = {}

    def _key(self, name: str) -> str:
        return self.cache.make_and_validate_key(name)

    def keys(self, connection_id: int) -> tuple[str, str]:
        """(generation key, writing key) of a connection, made once per connection: validating a
        key costs more than reading it."""
        found = self._keys.get(connection_id)
        if found is None:
            found = self._key(f"credential:gen:{connection_id}"), self._key(f"credential:writing:{connection_id}")
            if len(self._keys) < 100_000:
                self._keys[connection_id] = found
        return found

    def read(self, connection_id: int) -> tuple[int, bool]:
        """(the connection's generation, whether a write is under way): one round trip, two when
        the counter was missing (it is started from Redis's clock). Raises redis's errors."""
        keys = self.keys(connection_id)
        gen, writing = self.client.mget(keys)
        if gen is None:
            gen, writing = self._start(keys=keys)
        return int(gen), writing is not None

    def bump(self, connection_ids, phase: str) -> None:
        keys = [key for cid in sorted(connection_ids) for key in self.keys(cid)]
        if keys:
            self._bump(keys=keys, args=[phase, PENDING_MS])


_generations: Generations | None = None
_checked_cache = None
_lock = threading.Lock()


def generations() -> Generations | None:
    """The process's generation keys when the default cache is Redis, else None."""
    global _generations, _checked_cache
    cache = caches["default"]
    if _checked_cache is None or type(cache) is not type(_checked_cache):
        from django.core.cache.backends.redis import RedisCache

        with _lock:
            _generations = Generations(cache) if isinstance(cache, RedisCache) else None
            _checked_cache = cache
    return _generations


def _bump(connection_ids, phase: str) -> None:
    gens = generations()
    if gens is None or not connection_ids:
        return
    try:
        gens.bump(connection_ids, phase)
    except Exception:  # noqa: BLE001 - a write never fails for the cache's sake (module docstring)
        log.warning("credential generation not bumped (%s) for connections %s", phase, sorted(connection_ids),
                    exc_info=True)


def begin(connection_ids, using: str) -> None:
    """Before a write to these connections' credentials: readers stop keeping what they read."""
    _bump({cid for cid in connection_ids if cid is not None}, "begin")


def end(connection_ids, using: str) -> None:
    """After the write's statement: once its transaction commits (at once outside one), the
    generation moves again and the write counts as done."""
    ids = {cid for cid in connection_ids if cid is not None}
    if ids and generations() is not None:
        transaction.on_commit(lambda: _bump(ids, "end"), using=using)


class writing:
    """`with writing(ids, using):` around a write statement: begin before it, end after it."""

    def __init__(self, connection_ids, using: str):
        self.ids, self.using = set(connection_ids), using

    def __enter__(self):
        begin(self.ids, self.using)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            end(self.ids, self.using)
        return False


# ---------------------------------------------------------------------------- signals (save, delete)

def _before(sender, instance, using, **kwargs) -> None:
    begin([instance.connection_id], using)


def _after(sender, instance, using, **kwargs) -> None:
    end([instance.connection_id], using)


def connect_signals(model) -> None:
    """Bump around every save() and delete() of `model` (Credential), cascades included."""
    from django.db.models import signals

    signals.pre_save.connect(_before, sender=model, dispatch_uid="credgen-pre-save")
    signals.post_save.connect(_after, sender=model, dispatch_uid="credgen-post-save")
    signals.pre_delete.connect(_before, sender=model, dispatch_uid="credgen-pre-delete")
    signals.post_delete.connect(_after, sender=model, dispatch_uid="credgen-post-delete")
