"""tests/dbflush.py: the tests' quicker flush leaves the database as Django's own flush does."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.commands import flush as flush_command
from django.db import connection

from connections.outbound.client import RequestSpec, send
from connections.services.audit import Actor
from tests import dbflush, factories

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def rows_per_table() -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.django_table_names(only_existing=True, include_views=False):
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def fill_and_flush(vendors) -> dict[str, int]:
    made = factories.connection("clever", sandbox=vendors)  # a connection, a credential, audit rows
    factories.user("admin")
    send(made, RequestSpec("GET", "/v3.0/districts"), actor=Actor(label="tester", via="cli"))  # a log row
    before = rows_per_table()
    assert before["connections_requestlog"] and before["connections_auditevent"] and before["auth_user"]
    call_command("flush", verbosity=0, interactive=False, reset_sequences=False, allow_cascade=False)
    return rows_per_table()


def test_the_quick_flush_leaves_what_djangos_flush_leaves(vendors, monkeypatch):
    assert flush_command.sql_flush is dbflush.sql_flush  # installed by tests/conftest.py
    ours = fill_and_flush(vendors)
    monkeypatch.setattr(flush_command, "sql_flush", dbflush._django_sql_flush)
    djangos = fill_and_flush(vendors)
    assert ours == djangos
    assert ours["connections_requestlog"] == ours["connections_auditevent"] == ours["auth_user"] == 0
    assert ours["auth_group"] > 0  # post_migrate put the roles back after both


def test_the_flush_is_tried_again_after_a_deadlock_and_only_then(monkeypatch):
    """A live-server thread still writing can deadlock with the flush's DELETEs: PostgreSQL cancels
    one side, and the flush goes again; any other error is the test's to see."""
    from django.db import OperationalError

    monkeypatch.setattr(dbflush.time, "sleep", lambda seconds: None)
    calls = []

    def deadlocks_once(statements):
        calls.append(statements)
        if len(calls) == 1:
            raise OperationalError("deadlock detected")
        return "flushed"

    assert dbflush._execute_sql_flush(deadlocks_once)(["DELETE FROM t"]) == "flushed" and len(calls) == 2

    def broken(statements):
        raise OperationalError("relation does not exist")

    with pytest.raises(OperationalError, match="does not exist"):
        dbflush._execute_sql_flush(broken)(["DELETE FROM t"])
