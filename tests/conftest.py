"""Shared fixtures: users per role, the sandbox vendors over loopback, and the services check.

Tests marked `services` need PostgreSQL and Redis. When either is unreachable they are
skipped with a loud summary; REQUIRE_SERVICES=1 turns the skips into failures.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from tests import factories
from tests.authserver.fixture import authserver  # noqa: F401  (the test OAuth 2.0 / OIDC server)

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    from dashboard import test_settings

    if test_settings.SERVICES_AVAILABLE:
        return
    missing = [n for n, ok in (("PostgreSQL", test_settings.POSTGRES_AVAILABLE),
                               ("Redis", test_settings.REDIS_AVAILABLE)) if not ok]
    reason = f"needs {' and '.join(missing)} (unreachable)"
    for item in items:
        if item.get_closest_marker("services") or item.get_closest_marker("celery_worker"):
            if REQUIRE_SERVICES:
                item.add_marker(pytest.mark.xfail(reason=reason + " and REQUIRE_SERVICES=1", run=False, strict=True))
            else:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from dashboard import test_settings

    if not test_settings.SERVICES_AVAILABLE:
        skipped = len(terminalreporter.stats.get("skipped", []))
        terminalreporter.write_sep("!", "SERVICES MISSING", red=True, bold=True)
        terminalreporter.write_line(
            f"PostgreSQL reachable: {test_settings.POSTGRES_AVAILABLE}; Redis reachable: {test_settings.REDIS_AVAILABLE}. "
            f"{skipped} tests were skipped. Start them (see README) or set REQUIRE_SERVICES=1 to fail instead.",
            red=True, bold=True,
        )


def pytest_sessionfinish(session, exitstatus):
    from dashboard import test_settings

    if REQUIRE_SERVICES and not test_settings.SERVICES_AVAILABLE:
        session.exitstatus = 1


def pytest_configure(config):
    from tests import dbflush, dbtemplate

    dbflush.install()
    config._sb_template_build = dbtemplate.start_build(config)


def pytest_unconfigure(config):
    from tests import dbtemplate

    if getattr(config, "_sb_template_build", None) is not None:
        dbtemplate.finish_build(config._sb_template_build)


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_use_migrations,
                    django_db_keepdb, django_db_createdb, django_db_modify_db_settings):
    """pytest-django's fixture, except that an xdist worker copies the run's migrated template
    database instead of migrating its own (tests/dbtemplate.py)."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases
    from pytest_django.fixtures import _disable_migrations, _get_databases_for_setup

    from tests import dbtemplate

    if not django_db_use_migrations:
        _disable_migrations()
    aliases, serialized_aliases = _get_databases_for_setup(request.session.items)
    verbosity = request.config.option.verbose
    keepdb = django_db_keepdb and not django_db_createdb
    old_name = None
    with django_db_blocker.unblock():
        if aliases == {"default"} and django_db_use_migrations and not keepdb:
            old_name = dbtemplate.clone_for_worker(connection, serialize="default" in serialized_aliases)
        if old_name is None:
            db_cfg = setup_databases(verbosity=verbosity, interactive=False, aliases=aliases,
                                     serialized_aliases=serialized_aliases, keepdb=keepdb)
    yield
    if keepdb:
        return
    with django_db_blocker.unblock():
        if old_name is not None:
            connection.creation.destroy_test_db(old_name, verbosity)
        else:
            teardown_databases(db_cfg, verbosity=verbosity)


def clear_cache() -> None:
    """Empty this test run's cache keys only (other runs may share the Redis database)."""
    from django.core.cache import cache

    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    raw = getattr(cache, "_cache", None)
    if prefix and raw is not None and hasattr(raw, "get_client"):
        client = raw.get_client(write=True)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    else:
        cache.clear()


@pytest.fixture
def eager_celery():
    """Tasks run inline where they are queued (the Test button's test, in the view's thread)."""
    from dashboard.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def sleeps(monkeypatch):
    """Record the outbound client's backoff sleeps instead of waiting them (connections/outbound/client.py
    `_sleep`); the list holds each delay, for tests that assert the backoff."""
    from connections.outbound import client

    calls: list[float] = []
    monkeypatch.setattr(client, "_sleep", calls.append)
    return calls


@pytest.fixture(autouse=True)
def _isolated_cache():
    clear_cache()
    yield


@pytest.fixture(scope="session")
def sandbox():
    """The five vendor twins, served over loopback for the whole test session."""
    from connections.sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session, for tests/e2e and tests/system alike (Playwright's sync
    API allows one instance per process). Skipped when Chromium is missing."""
    from pathlib import Path

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set E2E_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def vendors(sandbox):
    """The sandbox, reset to defaults before the test (credentials, counters, faults)."""
    sandbox.reset()
    yield sandbox
    sandbox.reset()


@pytest.fixture
def tune(vendors):
    """Change a twin's settings for one test (reset() keeps settings, so restore them after)."""
    saved: list[tuple[str, dict]] = []

    def apply(vendor: str, **values):
        twin = vendors.vendor(vendor)
        saved.append((vendor, {k: getattr(twin, k) for k in values}))
        twin.configure(**values)
        return twin

    yield apply
    for vendor, values in reversed(saved):
        vendors.vendor(vendor).configure(**values)


@pytest.fixture
def empty_spool():
    """The rotation recovery spool, empty before and after the test (used by the rotation tests)."""
    from connections.rotation import spool

    for path in spool.pending():
        path.unlink()
    yield
    for path in spool.pending():
        path.unlink()


@pytest.fixture
def viewer(db):
    return factories.user("viewer")


@pytest.fixture
def operator(db):
    return factories.user("operator")


@pytest.fixture
def admin_user(db):
    return factories.user("admin")


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def admin_client_(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def live_url(live_server):
    return live_server.url


assert settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS, "tests talk to the loopback sandbox"
