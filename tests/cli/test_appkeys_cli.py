"""`manage.py appkeys`: add (key shown once, only its hash stored), list (never a key), scope, rotate,
revoke; exit codes 0 / 1 / 2, --json output and errors, audit rows without the key."""

from __future__ import annotations

import hashlib
import json

import pytest

from connections.models import ApplicationKey, AuditEvent
from connections.services import appkeys as services
from tests import factories
from tests.cli import run_cli

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def appkeys(*args):
    return run_cli(*args, command="appkeys")


@pytest.fixture
def two_connections():
    return factories.connection("cleverbridge", name="billing-api"), factories.connection("cleanlist", name="lists", secret={"token": "t0k3n-for-tests-only-aaaaaaaa"})


def test_add_shows_the_key_once_and_stores_only_its_hash(two_connections):
    r = appkeys("add", "shop", "--connections", "billing-api,lists", "--methods", "get,post", "--json")
    assert r.code == 0, r.err
    data = r.json()
    key = data["key"]
    assert key.startswith("sbk_") and data["key_prefix"] == key[:16]
    assert data["connections"] == ["billing-api", "lists"] and data["methods"] == ["GET", "POST"]
    row = ApplicationKey.objects.get(name="shop")
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps(list(ApplicationKey.objects.values()), default=str)
    assert services.authenticate(f"Bearer {key}").name == "shop"

    listed = appkeys("list", "--json")
    assert key not in listed.out and listed.json()[0]["key_prefix"] == data["key_prefix"]
    text = appkeys("list")
    assert "shop" in text.out and key not in text.out and "billing-api,lists" in text.out

    events = AuditEvent.objects.filter(action="appkey.create")
    assert events.count() == 1 and key not in json.dumps(events[0].details)
    assert events[0].details["connections"] == ["billing-api", "lists"]


def test_text_output_prints_the_key_once(two_connections):
    r = appkeys("add", "shop", "--connections", "lists")
    assert r.code == 0 and "shown once" in r.out
    key = next(w for w in r.out.split() if w.startswith("sbk_"))
    assert services.authenticate(f"Bearer {key}") is not None


@pytest.mark.parametrize("args, code, name", [
    (("add", "shop", "--connections", "nope"), 2, "bad_input"),
    (("add", "shop", "--connections", "lists", "--methods", "FETCH"), 2, "bad_input"),
    (("add", "Bad Name!", "--connections", "lists"), 2, "bad_input"),
    (("add", "shop", "--connections", ""), 2, "bad_input"),
    (("revoke", "ghost"), 2, "not_found"),
    (("rotate", "ghost"), 2, "not_found"),
])
def test_bad_input_changes_nothing_and_exits_2(two_connections, args, code, name):
    r = appkeys(*args, "--json")
    assert r.code == code and r.json()["error"]["code"] == name, r.out
    assert ApplicationKey.objects.count() == 0 and not AuditEvent.objects.filter(action__startswith="appkey").exists()


def test_duplicate_name_exits_2(two_connections):
    assert appkeys("add", "shop", "--connections", "lists").code == 0
    r = appkeys("add", "shop", "--connections", "lists", "--json")
    assert r.code == 2 and r.json()["error"]["code"] == "exists"


def test_rotate_replaces_the_key_and_revoke_stops_it(two_connections):
    old = appkeys("add", "shop", "--connections", "lists", "--json").json()["key"]
    rotated = appkeys("rotate", "shop", "--json")
    assert rotated.code == 0
    new = rotated.json()["key"]
    assert new != old and services.authenticate(f"Bearer {old}") is None
    assert services.authenticate(f"Bearer {new}").name == "shop"

    scoped = appkeys("scope", "shop", "--connections", "billing-api", "--methods", "GET", "--json")
    assert scoped.code == 0 and scoped.json()["connections"] == ["billing-api"]
    assert services.authorize(f"Bearer {new}", "lists").connection is None

    assert appkeys("revoke", "shop").code == 0
    assert services.authenticate(f"Bearer {new}") is None
    assert appkeys("revoke", "shop").code == 0  # revoked already: nothing to change
    again = appkeys("rotate", "shop", "--json")
    assert again.code == 1 and again.json()["error"]["code"] == "revoked"
    actions = list(AuditEvent.objects.filter(action__startswith="appkey").order_by("id").values_list("action", flat=True))
    assert actions == ["appkey.create", "appkey.rotate", "appkey.scope", "appkey.revoke"]
    assert not any(k in json.dumps(list(AuditEvent.objects.values("details"))) for k in (old, new))
