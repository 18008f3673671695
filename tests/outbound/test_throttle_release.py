"""RedisLimiter.release sends `CLIENT REPLY SKIP` + ZREM and reads nothing (connections/outbound/throttle.py):
the slot is free at once for everyone, the pooled connection stays in step, and an outage is
still only a lease left to expire (attempt.py `_quietly`)."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.cache.backends.redis import RedisCache
from redis.connection import Connection

from connections.outbound.attempt import LIMITER_ERRORS, _quietly
from connections.outbound.throttle import RedisLimiter, get_limiter
from connections.providers.http import Rule, ThrottlePlan
from tests.private_redis import PrivateRedis

pytestmark = [pytest.mark.services]
ONE = ThrottlePlan(rules=(Rule("concurrency", "test:release", 1),), block_scope="test:release:block")


@pytest.fixture
def limiter():
    limiter = get_limiter()
    if not isinstance(limiter, RedisLimiter):
        pytest.skip("the cache is not Redis")
    return limiter


def other_process() -> RedisLimiter:
    """A limiter with its own RedisCache and connection pool, as another process has."""
    cfg = django_settings.CACHES["default"]
    return RedisLimiter(RedisCache(cfg["LOCATION"], {"KEY_PREFIX": cfg.get("KEY_PREFIX", "")}))


def test_the_slot_is_free_for_another_process_right_after_release(limiter):
    other = other_process()
    for _ in range(20):
        permit = limiter.acquire(ONE, max_wait=1)
        assert permit.ok
        assert not other.acquire(ONE, max_wait=0).ok  # held
        limiter.release(permit)
        # Two connections: Redis may read the other's command first in the same turn of its event
        # loop, so "at once" means within a poll or two (2 ms each), never a lease's expiry.
        theirs = other.acquire(ONE, max_wait=1)
        assert theirs.ok and theirs.waited < 0.1, theirs
        other.release(theirs)
    assert limiter.in_flight("test:release") == 0


def test_release_reads_no_reply_and_the_connection_stays_in_step(limiter, monkeypatch):
    reads = []
    original = Connection.read_response

    def counted(self, *args, **kwargs):
        reads.append(1)
        return original(self, *args, **kwargs)

    client = limiter.client
    for i in range(50):
        permit = limiter.acquire(ONE, max_wait=1)
        assert permit.ok
        monkeypatch.setattr(Connection, "read_response", counted)
        limiter.release(permit)
        monkeypatch.setattr(Connection, "read_response", original)
        assert reads == []  # nothing waited for
        assert client.echo(f"reply {i}") == f"reply {i}".encode()  # its own reply, not the ZREM's
    assert limiter.in_flight("test:release") == 0


def test_a_redis_outage_does_not_raise_from_the_release(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        limiter = server.limiter()
        permit = limiter.acquire(ONE, max_wait=1)
        assert permit.ok
        server.stop()
        try:  # the first write to a closed peer may still "succeed" (the kernel buffers it)
            limiter.release(permit)
        except LIMITER_ERRORS:
            pass
        _quietly(limiter.release, permit)  # what the attempt does: logged, never raised
        server.start()  # a fresh server: the pool reconnects, in step
        again = limiter.acquire(ONE, max_wait=1)
        assert again.ok
        limiter.release(again)
        assert limiter.client.echo("after") == b"after"
        assert limiter.in_flight("test:release") == 0
    finally:
        server.stop()
