"""Connections are archived, never deleted (issue 12 item 12): their request log, rotation journal
and audit trail stay, searchable under the name; on PostgreSQL the audit table is append-only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.db import connection as db
from django.db.models import ProtectedError
from django_celery_beat.models import PeriodicTask

from connections.models import (
    AlertState,
    AuditEvent,
    Connection,
    CredentialState,
    RequestLog,
    RotationAttempt,
    RotationState,
)
from connections.outbound.client import RequestSpec, send
from connections.services import batch
from connections.services.archive import connection_archive
from connections.services.audit import Actor
from tests import factories
from tests.cli import run_cli

pytestmark = [pytest.mark.services, pytest.mark.django_db]
ACTOR = Actor(label="tester", via="cli")


def used(vendors, name="clever-old"):
    connection = factories.connection("clever", name=name, sandbox=vendors)
    assert send(connection, RequestSpec("GET", "/v3.0/districts"), actor=ACTOR, operation="test").ok
    RotationAttempt.objects.create(connection=connection, kind="staged", state=RotationState.SUCCEEDED,
                                   actor_label="tester", error="pasted and verified")
    return connection


def test_archive_from_the_page_keeps_history_and_stops_everything(vendors, admin_client_, admin_user,
                                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        connection = used(vendors)
    assert PeriodicTask.objects.filter(name="connection-test:clever-old").exists()
    logged = RequestLog.objects.filter(connection=connection).count()
    AlertState.objects.create(connection=connection, condition="failing", active=True, detail="failing")
    page = admin_client_.get("/connections/clever-old/").content.decode()
    assert "Archive connection" in page and "data-confirm" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post("/connections/clever-old/archive/")
    assert response.status_code == 302 and response.url == "/connections/clever-old/"

    page = admin_client_.get("/connections/clever-old/").content.decode()
    assert "Archived on" in page and admin_user.username in page
    for action in ("Edit settings", "Replace secret", "Archive connection", "Rotate now", ">Test<"):
        assert action not in page, action
    assert "pasted and verified" in page  # the rotation journal, on its page
    assert "/v3.0/districts" in page  # its latest requests
    # Gone from what is in use: overview, list, schedules, Test all; its actions answer 404.
    assert "clever-old" not in admin_client_.get("/").content.decode()
    assert "clever-old" not in admin_client_.get("/connections/").content.decode()
    assert not PeriodicTask.objects.filter(name="connection-test:clever-old").exists()
    assert not AlertState.objects.filter(connection=connection, active=True).exists()  # no alert left firing
    assert batch.test_all_start(actor=ACTOR)["total"] == 0
    for path in ("edit/", "secret/"):
        assert admin_client_.get(f"/connections/clever-old/{path}").status_code == 404
    assert admin_client_.post("/connections/clever-old/test/").status_code == 404
    # History stays, and is searchable under its name.
    assert RequestLog.objects.filter(connection=connection).count() == logged
    log = admin_client_.get("/log/?connection=clever-old").content.decode()
    assert "clever-old (archived)" in log and "/v3.0/districts" in log
    audit = admin_client_.get("/audit/?connection=clever-old").content.decode()
    assert "connection.archive" in audit and "connection.create" in audit
    # Its secrets are retired and shredded: never sent again.
    credential = connection.credentials.get()
    assert credential.state == CredentialState.RETIRED and credential.reveal() == {}
    before = vendors.stats("clever")["requests"]
    result = send(Connection.with_archived.get(pk=connection.pk), RequestSpec("GET", "/v3.0/districts"),
                  actor=ACTOR, credential=credential)
    assert not result.ok and result.error_code == "archived"
    assert vendors.stats("clever")["requests"] == before


def test_an_archived_name_stays_taken_and_the_cli_says_why(vendors, admin_client_):
    connection_archive(connection=used(vendors), actor=ACTOR)
    response = admin_client_.post("/connections/new/", {
        "name": "clever-old", "provider": "clever", "test_interval": "300", "refresh_interval": "0",
        "secret_token": "tok-new"})
    assert response.status_code == 200
    assert "an archived connection keeps the name" in response.content.decode()
    added = run_cli("add", "clever-old", "--provider", "clever", stdin={"token": "tok-new"})
    assert added.code == 2 and "archived connection keeps the name" in added.err
    cli_test = run_cli("test", "clever-old")
    assert cli_test.code == 2 and "was archived on" in cli_test.err
    assert Connection.with_archived.filter(name="clever-old").count() == 1


def test_no_archive_while_a_rotation_is_unsettled(vendors, admin_client_):
    connection = used(vendors)
    RotationAttempt.objects.create(connection=connection, state=RotationState.STARTED, step="journaled")
    response = admin_client_.post("/connections/clever-old/archive/", follow=True)
    assert "rotation of clever-old is running or not yet settled" in response.content.decode()
    connection.refresh_from_db()
    assert connection.archived_at is None
    assert connection.credentials.get().state == CredentialState.ACTIVE


def test_history_cannot_be_deleted_with_its_connection_or_user(vendors, admin_user):
    connection = used(vendors)
    AuditEvent.objects.create(actor=admin_user, actor_label=admin_user.username, action="x", connection=connection)
    with pytest.raises(ProtectedError):
        connection.delete()
    with pytest.raises(ProtectedError):
        get_user_model().objects.get(pk=admin_user.pk).delete()


@pytest.mark.skipif(db.vendor != "postgresql", reason="the trigger is PostgreSQL's")
@pytest.mark.parametrize("statement", [
    "UPDATE connections_auditevent SET action = 'rewritten' WHERE id = %s",
    "DELETE FROM connections_auditevent WHERE id = %s",
])
def test_the_audit_table_refuses_update_and_delete(statement):
    event = AuditEvent.objects.create(actor_label="someone", action="secret.replace", connection_name="x")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), db.cursor() as cursor:
        cursor.execute(statement, [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "secret.replace"
