"""Settings for the test suite: real PostgreSQL and Redis when they are reachable.

tests/conftest.py skips tests marked `services` when they are not (loudly), and
REQUIRE_SERVICES=1 turns those skips into failures.
"""

import os
import socket
from urllib.parse import urlsplit


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


_pg_url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test"
_redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_AVAILABLE = _reachable(_pg_url, 5432)
REDIS_AVAILABLE = _reachable(_redis_url, 6379)
SERVICES_AVAILABLE = POSTGRES_AVAILABLE and REDIS_AVAILABLE

os.environ["DEBUG"] = "false"
os.environ["SECRET_KEY"] = "test-secret-key-not-for-production"
os.environ["HTTPS_ONLY"] = "false"
os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
os.environ["OUTBOUND_ALLOW_PRIVATE_NETWORKS"] = "true"
# Two fixed test keys, newest first (never used outside tests).
os.environ["CREDENTIAL_KEYS"] = "mHWpJZ5C_8lJthykFMT0jVbJunxHg-_GB5Z4P0YBXsU=,vh4GE6cDHmJngYEbw8Kb1dEz9_UMWaGSweIb6KHILPU="
os.environ.pop("DEMO_MODE", None)
# Most tests sign admins in with force_login; tests/dashboard/test_second_factor.py turns the rule back on.
os.environ["SECOND_FACTOR_FOR_ADMINS"] = "false"
if POSTGRES_AVAILABLE:
    os.environ["DATABASE_URL"] = _pg_url
else:
    os.environ["DATABASE_URL"] = "sqlite:///:memory:"
_prefix = os.environ.get("TEST_KEY_PREFIX", "sbtest")
# pytest-xdist: each worker gets its own cache keys, Celery queue and spool (pytest-django already
# suffixes the test database per worker). Exported, so processes a test starts inherit the same prefix.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker and not _prefix.endswith(f"_{_worker}"):
    _prefix = f"{_prefix}_{_worker}"
os.environ["TEST_KEY_PREFIX"] = _prefix
if REDIS_AVAILABLE:
    os.environ["CACHE_URL"] = f"{_redis_url}/1"
    os.environ["CELERY_BROKER_URL"] = f"{_redis_url}/2"
else:
    os.environ["CACHE_URL"] = "locmemcache://tests"
    os.environ["CELERY_BROKER_URL"] = "memory://"

from .settings import *  # noqa: E402,F403
from .settings import CACHES, DATABASES, VAR_DIR  # noqa: E402

DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DB_NAME", "test_switchboard")}
CACHES["default"]["KEY_PREFIX"] = _prefix
# Concurrent test runs (several developers, one machine) each get their own queue.
CELERY_TASK_DEFAULT_QUEUE = f"{_prefix}-celery"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
(VAR_DIR / "staticfiles").mkdir(parents=True, exist_ok=True)
RECOVERY_SPOOL_DIR = VAR_DIR / "test-spool" / _prefix
