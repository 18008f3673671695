"""State another process needs is shared by every process on the embedded default (`make run`:
two web workers, a Celery worker with two processes, beat, all on one SQLite file): Test all's
progress and the cache. Each step below is a separate OS process, as in `make run`. The limiter's
cross-process tests are in tests/outbound/test_throttle.py."""

from __future__ import annotations

import json

import pytest

from tests.embedded import embedded_env, run

START = """
import json
from connections.services.audit import Actor
from connections.services.batch import test_all_start
from connections.services.vault import connection_create
for name in ("shared-a", "shared-b"):
    connection_create(name=name, provider="clever", base_url="http://127.0.0.1:9/clever", secret={"token": "t"},
                      actor=Actor(label="test"))
print(json.dumps(test_all_start(actor=Actor(label="test"))))
"""

# What a Celery worker process does when a test of the batch finishes (tasks.run_test_in_batch).
RECORD = """
from connections.models import Connection
from connections.services.batch import batch_record
connection = Connection.objects.get(name="{name}")
for _ in range({times}):
    batch_record(batch_id="{batch}", connection_id=connection.pk, ok={ok})
"""

# What another web worker answers when the page polls (views.ops.test_all_progress).
POLL = """
import json
from django.contrib.auth.models import Group, User
from django.test import Client
user, _ = User.objects.get_or_create(username="poller")
user.groups.add(Group.objects.get(name="operator"))
client = Client()
client.force_login(user)
r = client.get("/test-all/{batch}/", headers={{"HX-Request": "true"}})
print(json.dumps({{"status": r.status_code, "html": r.content.decode()}}))
"""


def shell(env: dict, code: str) -> str:
    """Run Python code in a new process (manage.py shell); its last line of output."""
    lines = run(env, "manage.py", "shell", "--no-imports", "-c", code).strip().splitlines()
    return lines[-1] if lines else ""


def poll(env: dict, batch: str) -> dict:
    # DEBUG: the page's static file URLs without a collectstatic manifest.
    return json.loads(shell({**env, "DEBUG": "true"}, POLL.format(batch=batch)))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = embedded_env(tmp_path_factory.mktemp("embedded"))
    run(env, "manage.py", "migrate", "--no-input")
    return env


@pytest.mark.process
class TestEmbeddedDefault:
    def test_test_all_progress_is_the_same_in_every_process_and_a_redelivery_counts_once(self, env):
        started = json.loads(shell(env, START))
        batch = started["id"]
        assert (started["total"], started["done"]) == (2, 0)

        shell(env, RECORD.format(name="shared-a", batch=batch, ok=True, times=2))  # delivered twice
        page = poll(env, batch)
        assert page["status"] == 200
        assert "Testing 2 connections: 1 done" in page["html"] and "50 %" in page["html"]

        shell(env, RECORD.format(name="shared-b", batch=batch, ok=False, times=1))
        page = poll(env, batch)
        assert "Tested 2 connections" in page["html"] and "data-poll" not in page["html"]

        assert poll(env, "0" * 32)["status"] == 404

    def test_the_cache_is_shared_by_processes(self, env):
        """E.g. a queued rotation's status (rotation/jobs.py): set by a web worker, read by another."""
        shell(env, "from django.core.cache import cache; cache.set('shared-test', 'from another process', 60)")
        out = shell(env, "from django.core.cache import cache; print(cache.get('shared-test'))")
        assert out == "from another process"

    def test_limiter_and_log_commits_skip_the_fsync_and_every_other_commit_stays_durable(self, env):
        """commits.fast_commit on SQLite: NORMAL for its own commit, then FULL again, so a rotated
        token committed next on the same connection still waits for the disk."""
        levels = shell(env, "\n".join([
            "from django.db import connection",
            "from connections.outbound.commits import fast_commit",
            "level = lambda: connection.cursor().execute('PRAGMA synchronous').fetchone()[0]",
            "before = level()",
            "with fast_commit():",
            "    inside = level()",
            "print(before, inside, level())",
        ]))
        assert levels == "2 1 2"  # FULL, NORMAL, FULL
