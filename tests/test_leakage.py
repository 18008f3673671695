"""The secret leakage sweep: with known secrets in every provider's connections, drive the
pages, the CLI, tests, calls, failures, a rotation and queued Celery tasks, then search
every page, every log line, the Celery messages in Redis, a dump of the whole database
(request log, audit log, journal, beat tables) and the exception pages for the secrets' bytes.
"""

from __future__ import annotations

import base64
import logging
import subprocess

import pytest
from django.conf import settings
from django.db import connection as db_connection
from django.test import Client
from django.urls import resolve

from connections.models import Connection, Credential, RequestLog
from connections.rotation import rotate
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from connections.services.testing import connection_call, connection_test
from tests import factories
from tests.cli import run_cli
from tests.urlconf import all_routes, fill

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
SECRET_FIELDS = ("password", "token", "refresh_token")


def secret_strings(secret: dict) -> set[str]:
    """Every secret value of a credential, nested sessions included."""
    found = set()
    for key, value in secret.items():
        if isinstance(value, dict):
            found |= secret_strings(value)
        elif key in SECRET_FIELDS and isinstance(value, str) and len(value) >= 8:
            found.add(value)
    return found


def needles() -> set[bytes]:
    """The secrets of every credential ever stored, plus the Basic/Integrator header forms."""
    out: set[bytes] = set()
    for cred in Credential.objects.all():
        secret = cred.reveal()
        for value in secret_strings(secret):
            out.add(value.encode())
        if "username" in secret and "password" in secret:
            out.add(base64.b64encode(f"{secret['username']}:{secret['password']}".encode()))
    return out


def assert_clean(blob: bytes | str, where: str, secrets: set[bytes]):
    data = blob.encode() if isinstance(blob, str) else blob
    leaked = [s.decode() for s in secrets if s in data]
    assert not leaked, f"{where} contains secret bytes: {leaked}"


@pytest.fixture
def world(vendors, monkeypatch):
    """Five connections with known secrets, exercised through every path that touches them."""
    from connections.outbound import client as outbound

    monkeypatch.setattr(outbound, "_sleep", lambda seconds: None)
    actor = Actor(label="sweep")
    made = {p: factories.connection(p, name=f"leak-{p}", sandbox=vendors) for p in DEMO_CREDENTIALS}
    bearer = factories.connection("teletracker", name="leak-tt-bearer", sandbox=vendors,
                                  secret={**DEMO_CREDENTIALS["teletracker"], "auth_scheme": "bearer_session"})
    integrator = factories.connection("teletracker", name="leak-tt-integrator", sandbox=vendors,
                                      secret={**DEMO_CREDENTIALS["teletracker"], "auth_scheme": "integrator"})
    wrong = factories.connection("cleverbridge", name="leak-wrong", sandbox=vendors,
                                 secret={"username": "demo-api-user", "password": "WRONG-password-0000x"})
    for c in [*made.values(), bearer, integrator, wrong]:
        connection_test(connection=c, actor=actor)
    connection_call(connection=bearer, method="GET", path="/reports/call-data?start=2026-01-01&end=2026-01-02",
                    actor=actor)
    connection_call(connection=made["cleanlist"], method="POST", path="/email_verify/",
                    data={"email": "a@example.com"}, actor=actor)
    vendors.set_fault("clever", "malformed_json", count=1)
    connection_test(connection=made["clever"], actor=actor)
    vendors.set_fault("cloverdx", "html502", count=1)
    connection_test(connection=made["cloverdx"], actor=actor)
    rotate(connection=made["cleanlist"], actor=actor)
    rotate(connection=bearer, actor=actor)
    run_cli("test", "leak-clever", "--json")
    run_cli("show", "leak-teletracker", "--json")
    return made


def test_no_secret_anywhere(world, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = needles()
    assert len(secrets) >= 10  # the sweep searches for something real

    # Celery messages: queue tasks for every connection, then read the raw broker lists in Redis.
    import redis

    from connections.tasks import rotate_credentials, run_test

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(queue)
    for c in Connection.objects.all():
        run_test.delay(c.pk, "sweep")
        rotate_credentials.delay(c.pk, actor_label="sweep")
    messages = broker.lrange(queue, 0, -1)
    assert len(messages) == 2 * Connection.objects.count()
    assert_clean(b"\n".join(messages), "the Celery messages in Redis", secrets)
    broker.delete(queue)

    # Every page, as an admin, full pages and htmx fragments, every log row's detail page.
    admin = factories.user("admin")
    client = Client()
    client.force_login(admin)
    samples = {"name": "leak-teletracker", "pk": RequestLog.objects.order_by("-id").first().pk,
               "batch_id": "0" * 32, "run_id": "0" * 32, "attempt_id": "00000000-0000-0000-0000-000000000000",
               "user_id": admin.pk, "uidb64": "MA", "token": "x"}
    # The proxy's answers are checked for secrets by tests/system/test_proxy.py (a session gets 401 there).
    urls = {fill(route, samples) for route, name in all_routes() if name not in ("logout", "proxy", "proxy_root")}
    urls |= {f"/connections/{c.name}/" for c in Connection.objects.all()}
    urls |= {f"/log/{pk}/" for pk in RequestLog.objects.values_list("pk", flat=True)}
    urls |= {"/errors/?range=24h", "/audit/"}
    for url in sorted(urls):
        try:
            resolve(url.split("?")[0])
        except Exception:
            continue
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code in (200, 302, 404, 405), (url, response.status_code)
            assert_clean(response.content, f"GET {url} {headers}", secrets)

    # The request log, the audit log, the journal, beat: a dump of the whole database.
    dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", db_connection.settings_dict["NAME"]],
                          capture_output=True, check=True, timeout=120).stdout
    assert b"connections_requestlog" in dump
    assert_clean(dump, "pg_dump", secrets)

    # Every log line written while the world was exercised and the pages were read.
    assert_clean("\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records), "the logs", secrets)

    # The CLI's machine-readable outputs.
    for args in (("list", "--json"), ("export",), ("show", "leak-tt-bearer", "--json")):
        assert_clean(run_cli(*args).out, f"connections {' '.join(args)}", secrets)


def test_exception_page_has_no_secret(world, settings, eager_celery):
    """An unexpected error while a secret is in memory: the 500 page and the error log hold none of it.
    (The Test button's test runs here in the view's thread, its error propagated: the worst case.)"""
    from connections.outbound import client as outbound
    from dashboard.celery import app

    app.conf.task_eager_propagates = True

    secrets = needles()
    conn = Connection.objects.get(name="leak-cleverbridge")

    def explode(*args, **kwargs):
        secret = conn.credentials.get(state="active").reveal()  # noqa: F841 — a secret in the frame's locals
        raise RuntimeError("boom while sending")

    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    original = outbound.send
    outbound.send = explode
    try:
        admin = factories.user("admin")
        client = Client(raise_request_exception=False)
        client.force_login(admin)
        response = client.post(f"/connections/{conn.name}/test/")
    finally:
        outbound.send = original
        app.conf.task_eager_propagates = False
    assert response.status_code == 500
    assert_clean(response.content, "the 500 page", secrets)
