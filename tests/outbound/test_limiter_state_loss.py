"""The shared limiter after Redis lost its state (restarted without persistence), and a limiter
that cannot be reached: issue 13 (soak: 1,203 Clever requests in a minute and four 429s after a
Redis restart; five rotations left `started` when the limiter raised ConnectionError).

Each test runs its own redis-server (tests/private_redis.py), never the shared one.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from connections.models import Outcome, RotationAttempt, RotationState
from connections.outbound import throttle
from connections.outbound.client import RequestSpec, send
from connections.rotation import rotate
from connections.services.audit import Actor
from connections.services.vault import active_credential
from tests import factories
from tests.private_redis import PrivateRedis
from tests.rotation.test_rotation import cleanlist

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("empty_spool")]
ACTOR = Actor(label="tester", via="cli")
LIMIT = 30  # per minute, ours and the twin's: small, so a test fills a window in a second


@pytest.fixture
def private_redis(tmp_path, monkeypatch):
    server = PrivateRedis(tmp_path)
    server.start()
    monkeypatch.setattr(throttle, "_limiter", server.limiter())
    yield server
    server.stop()


@pytest.fixture
def clever_limit(settings, tune):
    settings.CLEVER_RATE_LIMIT_PER_MINUTE = LIMIT
    tune("clever", limit_per_minute=LIMIT)
    # The window is the minute: start well inside one, so the whole test shares it (a test takes
    # under a second; 10 s leaves room for a loaded machine).
    left = 60 - time.time() % 60
    if left < 10:
        time.sleep(left + 0.2)


def districts(connection, n: int) -> list:
    return [send(connection, RequestSpec("GET", "/v3.0/districts"), actor=ACTOR, max_wait=0) for _ in range(n)]


def sent(results) -> int:
    return sum(1 for r in results if r.status_code is not None)


def test_a_redis_restart_mid_window_keeps_clevers_per_minute_limit(vendors, clever_limit, private_redis):
    connection = factories.connection("clever", sandbox=vendors)
    before = districts(connection, 20)
    assert sent(before) == 20 and all(r.ok for r in before)

    private_redis.restart()  # every count is gone
    after = districts(connection, 20)

    stats = vendors.stats("clever")
    assert stats["by_status"].get(429, 0) == 0
    assert stats["max_per_minute_by_token"] <= LIMIT
    assert 0 < sent(after) < 10  # what was left of the window, from our own log: not a fresh 29
    refused = [r for r in after if r.status_code is None]
    assert refused and all(r.outcome == Outcome.THROTTLED for r in refused)
    assert "window's request budget is spent" in refused[-1].error_message


def test_the_vendors_count_seeds_the_window_when_others_used_the_token(vendors, clever_limit, private_redis):
    """Requests Switchboard never logged (another installation with the same token) are in the
    vendor's X-RateLimit-Remaining, which the connection stored."""
    connection = factories.connection("clever", sandbox=vendors)
    token = active_credential(connection).reveal()["token"]
    url = connection.provider_obj.url_for(connection.base_url, "/v3.0/districts")
    for _ in range(22):  # someone else, straight to the vendor
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            json.load(answer)
    assert sent(districts(connection, 1)) == 1  # stores Remaining: 7

    private_redis.restart()
    after = districts(connection, 15)

    stats = vendors.stats("clever")
    assert stats["by_status"].get(429, 0) == 0
    assert stats["max_per_minute_by_token"] <= LIMIT
    assert sent(after) <= LIMIT - 23 - 1


def test_a_refresh_the_limiter_cannot_admit_fails_with_the_old_secret_active(vendors, private_redis):
    connection = cleanlist(vendors)
    old = active_credential(connection)
    private_redis.stop()  # the limiter raises redis.ConnectionError

    outcome = rotate(connection=connection, actor=ACTOR)

    assert outcome.state == RotationState.FAILED, outcome.message
    assert "not sent" in outcome.message and "rate limiter could not be reached" in outcome.message
    assert "unchanged and still active" in outcome.message
    attempt = RotationAttempt.objects.get(pk=outcome.attempt_id)
    assert attempt.state == RotationState.FAILED and attempt.finished_at is not None
    assert not RotationAttempt.objects.filter(connection=connection, state=RotationState.STARTED).exists()
    assert active_credential(connection).pk == old.pk
    assert vendors.stats("cleanlist")["refresh_calls"] == []
    row = connection.request_logs.get(operation="refresh")
    assert row.error_code == "limiter_unavailable" and row.status_code is None

    private_redis.start()  # back: the same secret refreshes
    again = rotate(connection=connection, actor=ACTOR)
    assert again.state == RotationState.SUCCEEDED, again.message
