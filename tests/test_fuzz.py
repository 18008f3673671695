"""Fuzzed vendors (issue 7, hostile input): random status codes, headers, encodings and bodies.

For each of the five providers, hundreds of requests go through the real client against
tests/fuzz_vendor.py: the connection test, ad-hoc calls, the rotation refresh (Cleanlist,
TeleTracker bearer sessions), the Celery task functions, and the Test button and log pages.
Asserted every time: no exception escapes, every attempt is a RequestLog row with a valid
outcome, no stored secret appears in any row, no page answers 500.

Reproduce a failure with the seed it prints: FUZZ_SEED=<seed> (FUZZ_EXAMPLES=<n> for more).
"""

from __future__ import annotations

import os
import random
import types

import pytest
from django.db.models import Q

from connections import tasks
from connections.models import Connection, Credential, Outcome, RequestLog
from connections.outbound import client
from connections.outbound.sessions import session_store
from connections.providers.http import RequestSpec
from connections.rotation import reconcile, rotate
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from connections.services.testing import connection_call, connection_test
from tests import factories
from tests.conftest import clear_cache
from tests.fuzz_vendor import FuzzVendor

pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

SEED = int(os.environ.get("FUZZ_SEED", "20240607"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "90"))  # per operation and provider
PROVIDERS = ["cleverbridge", "clever", "cloverdx", "teletracker", "cleanlist"]
OUTCOMES = set(Outcome.values)
ACTOR = Actor(label="fuzz", via="cli")
LOG_TEXT_FIELDS = ("path", "vendor_request_id", "error_code", "error_message", "error_details", "rate_limit",
                   "request_excerpt", "response_excerpt", "response_content_type", "actor_label")
CALLS = {
    "cleverbridge": [("GET", "/subscription/getsubscription", {"SubscriptionId": "S1"}), ("POST", "/urlgenerator/x", {"a": 1})],
    "clever": [("GET", "/v3.0/users", {"limit": "5"}), ("GET", "/me", None)],
    "cloverdx": [("GET", "/executions", {"pageSize": "1"}), ("POST", "/jobs/run", {"x": [1, 2]})],
    "teletracker": [("GET", "/reports/call-data", {"start": "2024-01-01"}), ("POST", "/contacts", {"name": "n"})],
    "cleanlist": [("POST", "/email_verify/", {"email": "ops@example.com"}), ("POST", "/pub_echo/", {"p": 1})],
}


@pytest.fixture(scope="module")
def fuzz():
    server = FuzzVendor(seed=SEED).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fast(settings, monkeypatch):
    """No backoff sleeps; short timeouts (the fuzzer never stalls on purpose)."""
    monkeypatch.setattr(client, "_sleep", lambda seconds: None)
    # The rotation's probe pauses between inconclusive probes (connections/rotation/reconcile.py).
    monkeypatch.setattr(reconcile, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    settings.OUTBOUND_READ_TIMEOUT = 1.0
    settings.OUTBOUND_CONNECT_TIMEOUT = 2.0
    settings.OUTBOUND_MAX_WAIT = 1.0
    settings.OUTBOUND_MAX_WAIT_BACKGROUND = 1.0


def _connection(provider: str, fuzz: FuzzVendor, n: int = 0) -> Connection:
    secret = dict(DEMO_CREDENTIALS[provider])
    options = {"test_service": "email_verify"} if provider == "cleanlist" else None
    if provider == "teletracker":
        secret["auth_scheme"] = "bearer_session"
    return factories.connection(provider, name=f"fuzz-{provider}-{n}", base_url=fuzz.base_url(provider),
                                secret=secret, options=options, test_interval=0)


def _give_session(connection: Connection) -> None:
    """A fresh, valid-looking TeleTracker session so the refresh path is taken (not the login)."""
    import time

    cred = Credential.objects.get(connection=connection, state="active")
    session_store(credential=cred, session={
        "token": f"sess-{random.getrandbits(48):x}", "refresh_token": f"refr-{random.getrandbits(48):x}",
        "obtained_at": time.time(), "expires_at": time.time() + 3600, "lifetime": 3600.0, "refresh_expires": ""})


def _unblock(connection: Connection) -> None:
    """Forget throttle blocks and the auth pause the fuzzer's 401s/429s cause, so fuzzing goes on."""
    clear_cache()
    Connection.objects.filter(pk=connection.pk).update(tests_paused=False, paused_reason="", blocked_until=None)
    connection.refresh_from_db()


def _secrets(connection: Connection) -> set[str]:
    """Every secret value ever stored for the connection (all credential versions), long enough to search."""
    provider = connection.provider_obj
    found: set[str] = set()
    for cred in Credential.objects.filter(connection=connection):
        secret = cred.secret.reveal()
        values = provider.secret_values({k: v for k, v in secret.items() if k != "username"})
        found |= {v for v in values if isinstance(v, str) and len(v) >= 8}
    return found


def _check_results(results, where: str) -> None:
    for result in results:
        assert result.outcome in OUTCOMES, f"{where}: outcome {result.outcome!r}"
        assert result.log_ids, f"{where}: a send without a RequestLog row"


def _check_rows(connection: Connection, fuzz: FuzzVendor, context: str) -> None:
    rows = RequestLog.objects.filter(connection=connection)
    bad = rows.exclude(outcome__in=OUTCOMES)
    assert not bad.exists(), f"{context}: rows with invalid outcomes {list(bad.values_list('outcome', flat=True)[:5])}"
    # Every request that reached the vendor has its row (rows of requests never sent come on top).
    received = fuzz.received[connection.provider]
    sent_rows = rows.exclude(request_excerpt__contains="[not sent:").count()
    assert sent_rows >= received, f"{context}: the fuzzer saw {received} requests, only {sent_rows} rows"
    secrets = _secrets(connection)
    for row in rows.values(*LOG_TEXT_FIELDS, "pk"):
        text = " ".join(str(row[f]) for f in LOG_TEXT_FIELDS)
        for secret in secrets:
            assert secret not in text, f"{context}: a stored secret appears in RequestLog {row['pk']}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fuzzed_vendor_through_the_client(provider, fuzz, operator_client):
    seed = SEED + PROVIDERS.index(provider)
    fuzz.reseed(seed)
    fuzz.received.clear()
    context = f"{provider}, FUZZ_SEED={SEED} (per-provider seed {seed})"
    rng = random.Random(seed)
    connection = _connection(provider, fuzz)
    try:
        for i in range(EXAMPLES):
            # The connection test through the service (records health, audit).
            _unblock(connection)
            _check_results([connection_test(connection=connection, actor=ACTOR)], f"{context}: test #{i}")
            # An ad-hoc call with retries (the provider's policy decides).
            _unblock(connection)
            method, path, data = rng.choice(CALLS[provider])
            _check_results(connection_call(connection=connection, method=method, path=path, data=data, actor=ACTOR),
                           f"{context}: call #{i}")
            # The raw client with a path and query of its own.
            _unblock(connection)
            _check_results([client.send(connection, RequestSpec("GET", f"/x/{i}?q={i}"), actor=ACTOR)],
                           f"{context}: send #{i}")
            # The Celery task functions, called directly: never an unhandled exception.
            if i % 4 == 0:
                _unblock(connection)
                tasks.scheduled_test.run(connection.pk)
                tasks.run_test.run(connection.pk, actor_label="fuzz")
            # The rotation refresh path: one refresh call, whatever comes back.
            if provider in ("cleanlist", "teletracker") and i % 2 == 0:
                _unblock(connection)
                if provider == "teletracker":
                    _give_session(connection)
                rotate(connection=Connection.objects.get(pk=connection.pk), actor=ACTOR)
                tasks.rotate_credentials.run(connection.pk, actor_label="fuzz", via="schedule")
            # The Test button (htmx) on the page: never a 500.
            if i % 5 == 0:
                _unblock(connection)
                response = operator_client.post(f"/connections/{connection.name}/test/", HTTP_HX_REQUEST="true")
                assert response.status_code == 200, f"{context}: Test button answered {response.status_code}"
    except AssertionError:
        raise
    except Exception as exc:  # the point of the test: say which answers led here
        raise AssertionError(f"{context}: {type(exc).__name__} escaped: {exc}\nlast answers:\n  "
                             + "\n  ".join(fuzz.last_cases)) from exc

    _check_rows(connection, fuzz, context)
    _check_pages(connection, operator_client, context, rng)


def _check_pages(connection: Connection, web, context: str, rng: random.Random) -> None:
    """The pages that show what the fuzzer produced: the log, its filters, error history, the
    detail of a row of every kind (outcome x error code x status) and a random sample."""
    for url in ("/", "/log/", f"/log/?connection={connection.name}", "/log/?outcome=network_error",
                "/log/?outcome=http_error", "/errors/", f"/connections/{connection.name}/",
                f"/connections/{connection.name}/errors/", f"/connections/{connection.name}/headroom/",
                f"/connections/{connection.name}/rotations/", "/connections/", "/audit/"):
        for htmx in (False, True):
            extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
            response = web.get(url, **extra)
            assert response.status_code in (200, 302, 404), f"{context}: GET {url} answered {response.status_code}"
    rows = RequestLog.objects.filter(connection=connection)
    kinds: dict[tuple, int] = {}
    for pk, outcome, code, status in rows.values_list("pk", "outcome", "error_code", "status_code"):
        kinds.setdefault((outcome, code, status), pk)
    pks = list(kinds.values())
    all_pks = list(rows.values_list("pk", flat=True))
    pks += rng.sample(all_pks, min(40, len(all_pks)))
    for pk in pks:
        response = web.get(f"/log/{pk}/")
        assert response.status_code == 200, f"{context}: /log/{pk}/ answered {response.status_code}"
    assert rows.filter(~Q(outcome=Outcome.OK)).exists()  # the fuzzer did hurt
