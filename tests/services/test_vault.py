"""The credential vault: encryption at rest, versions, write-only pages, key rotation, audit."""

from __future__ import annotations

import subprocess
import threading

import pytest
from django.core.management import call_command
from django.db import IntegrityError, close_old_connections
from django.db import connection as db_connection
from django.test import override_settings

from connections.crypto import SecretUnavailable
from connections.models import AlertChannel, AuditEvent, Connection, Credential, CredentialState
from connections.sandbox import DEMO_CREDENTIALS
from connections.services.audit import Actor
from connections.services.vault import credential_activate, credential_add, secret_replace
from tests import factories

SECRETS = {
    "cleverbridge": {"username": "cb-user-7Q", "password": "cb-PASSWORD-k2Jx9vQ"},
    "clever": {"token": "clever-TOKEN-Zf83nq0Lr"},
    "cloverdx": {"username": "clover-user", "password": "clover-PASSWORD-u81Ks"},
    "teletracker": {"username": "tt-user", "password": "tt-PASSWORD-9aa1W", "account_id": "4711"},
    "cleanlist": {"token": "cleanlist-TOKEN-Pq0w8e"},
}
SECRET_BYTES = [v.encode() for s in SECRETS.values() for k, v in s.items() if k in ("password", "token")]

pytestmark = pytest.mark.services


def make_all():
    return {p: factories.connection(p, name=f"{p}-vault", secret=dict(s)) for p, s in SECRETS.items()}


def assert_no_secret(blob: bytes, where: str):
    for secret in SECRET_BYTES:
        assert secret not in blob, f"secret {secret!r} found in {where}"


@pytest.mark.django_db(transaction=True)
class TestEncryptionAtRest:
    def test_pg_dump_contains_no_secret(self):
        make_all()
        name = db_connection.settings_dict["NAME"]
        dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", name], capture_output=True,
                              check=True, timeout=60).stdout
        assert b"connections_credential" in dump  # the dump did include the table
        assert_no_secret(dump, "pg_dump")

    def test_every_page_omits_secrets(self, client, admin_user):
        connections = make_all()
        client.force_login(admin_user)
        urls = ["/", "/connections/", "/audit/", "/connections/new/"]
        for c in connections.values():
            urls += [f"/connections/{c.name}/", f"/connections/{c.name}/edit/", f"/connections/{c.name}/secret/"]
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            assert_no_secret(response.content, url)

    def test_secret_is_decryptable_and_fingerprinted(self):
        c = make_all()["clever"]
        cred = c.credentials.get(state=CredentialState.ACTIVE)
        assert cred.reveal() == SECRETS["clever"]
        assert "clever-TOKEN" not in repr(cred.secret) and "clever-TOKEN" not in str(cred.secret)
        assert len(cred.fingerprint) == 16


@pytest.mark.django_db
class TestVersions:
    def test_replace_creates_version_and_retires_previous(self):
        c = factories.connection("clever", secret={"token": "first-token-value"})
        old = c.credentials.get()
        new = secret_replace(connection=c, secret={"token": "second-token-value"}, actor=Actor(label="ops"))
        old.refresh_from_db()
        assert (old.state, new.state, new.version) == ("retired", "active", 2)
        assert new.fingerprint != old.fingerprint
        assert AuditEvent.objects.filter(action="secret.replace", actor_label="ops").exists()

    def test_replace_validates_against_schema(self):
        c = factories.connection("cleverbridge", secret={"username": "u", "password": "p"})
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError) as exc:
            secret_replace(connection=c, secret={"username": "u"}, actor=Actor())
        assert "password" in exc.value.message_dict
        assert c.credentials.count() == 1

    def test_undecryptable_secret_names_the_connection(self):
        c = factories.connection("clever", name="clever-lost", secret={"token": "t-123456"})
        cred = c.credentials.get()
        with override_settings(CREDENTIAL_KEYS=["vh4GE6cDHmJngYEbw8Kb1dEz9_UMWaGSweIb6KHILPU="]):
            with pytest.raises(SecretUnavailable) as exc:
                Credential.objects.get(pk=cred.pk).reveal()
        assert "clever-lost" in str(exc.value)
        assert cred.secret.token not in str(exc.value)


def race(fn, items, *, barrier_inside: bool = False) -> list[IntegrityError]:
    """Run fn on each item in its own thread, released together; return the IntegrityErrors raised."""
    barrier = threading.Barrier(len(items))
    errors: list[IntegrityError] = []

    def run(item):
        try:
            if barrier_inside:
                fn(item, barrier)
            else:
                barrier.wait()
                fn(item)
        except IntegrityError as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.django_db(transaction=True)
class TestOneActiveCredential:
    def test_concurrent_activations_leave_exactly_one_active(self):
        c = factories.connection("clever", secret={"token": "a-token-000"})
        staged = [credential_add(connection=c, secret={"token": f"staged-{i}"}, actor=Actor()) for i in range(2)]
        errors = race(lambda cred: credential_activate(credential=cred), staged)
        # Serialised by timing or by the constraint: never two active.
        assert Credential.objects.filter(connection=c, state="active").count() == 1
        assert len(errors) <= 1

    def test_racing_raw_activations_hit_the_database_constraint(self):
        """Two transactions that both set a staged credential active, bypassing the service: the
        partial unique index in PostgreSQL lets exactly one commit."""
        from django.db import transaction

        c = factories.connection("clever", secret={"token": "a-token-002"})
        Credential.objects.filter(connection=c).update(state="retired")
        staged = [credential_add(connection=c, secret={"token": f"raw-{i}"}, actor=Actor()) for i in range(2)]

        def activate(cred, barrier):
            with transaction.atomic():
                barrier.wait()  # both transactions are open before either writes
                Credential.objects.filter(pk=cred.pk).update(state="active")

        errors = race(activate, staged, barrier_inside=True)
        assert len(errors) == 1
        assert Credential.objects.filter(connection=c, state="active").count() == 1

    def test_database_refuses_a_second_active(self):
        c = factories.connection("clever", secret={"token": "a-token-001"})
        with pytest.raises(IntegrityError):
            credential_add(connection=c, secret={"token": "x-2"}, actor=Actor(), state=CredentialState.ACTIVE)


OLD_KEY = "mHWpJZ5C_8lJthykFMT0jVbJunxHg-_GB5Z4P0YBXsU="
NEW_KEY = "vh4GE6cDHmJngYEbw8Kb1dEz9_UMWaGSweIb6KHILPU="


def rotate_keys(*args):
    try:
        call_command("rotate_keys", *args, stdout=__import__("io").StringIO(), stderr=__import__("io").StringIO())
    except SystemExit as exc:
        return exc.code
    return 0


@pytest.mark.django_db
class TestRotateKeys:
    def test_prepend_rotate_then_drop_old_key(self):
        with override_settings(CREDENTIAL_KEYS=[OLD_KEY]):
            make_all()
        with override_settings(CREDENTIAL_KEYS=[NEW_KEY, OLD_KEY]):
            assert rotate_keys("--check") == 1
            assert rotate_keys() == 0
            assert rotate_keys("--check") == 0
            assert rotate_keys() == 0  # idempotent
        with override_settings(CREDENTIAL_KEYS=[NEW_KEY]):
            for p, secret in SECRETS.items():
                cred = Connection.objects.get(name=f"{p}-vault").credentials.get(state="active")
                assert cred.reveal().items() >= secret.items()
            assert rotate_keys("--check") == 0
        assert AuditEvent.objects.filter(action="keys.rotate").exists()

    def test_dropping_old_key_first_is_reported(self, capsys):
        with override_settings(CREDENTIAL_KEYS=[OLD_KEY]):
            factories.connection("clever", name="clever-orphan", secret={"token": "orphan-token"})
        import io

        err = io.StringIO()
        with override_settings(CREDENTIAL_KEYS=[NEW_KEY]):
            with pytest.raises(SystemExit) as exc:
                call_command("rotate_keys", "--check", stdout=io.StringIO(), stderr=err)
        assert exc.value.code == 1
        assert "clever-orphan" in err.getvalue()
        assert "cannot be decrypted" in err.getvalue()

    def test_alert_channels_are_re_encrypted_too(self):
        """A webhook URL is a secret, sealed like credentials: after rotate_keys the old key can go
        and the channel still reads; before, --check names it."""
        url = "https://hooks.example.com/services/T000/B000/very-secret-path"
        with override_settings(CREDENTIAL_KEYS=[OLD_KEY]):
            AlertChannel.objects.create(name="ops-hook", kind="webhook", config={"url": url},
                                        display_target="hooks.example.com")
        import io

        out = io.StringIO()
        with override_settings(CREDENTIAL_KEYS=[NEW_KEY, OLD_KEY]):
            with pytest.raises(SystemExit):
                call_command("rotate_keys", "--check", stdout=out, stderr=io.StringIO())
            assert "alert channel ops-hook (webhook)" in out.getvalue()
            assert rotate_keys() == 0
        with override_settings(CREDENTIAL_KEYS=[NEW_KEY]):
            assert AlertChannel.objects.get(name="ops-hook").config.reveal() == {"url": url}
            assert rotate_keys("--check") == 0


@pytest.mark.django_db
class TestPages:
    def test_viewer_cannot_reach_admin_pages(self, viewer_client):
        c = factories.connection("clever", secret={"token": "viewer-can-not"})
        for url in ["/connections/new/", f"/connections/{c.name}/edit/", f"/connections/{c.name}/secret/"]:
            assert viewer_client.get(url).status_code == 403, url
        assert viewer_client.post(f"/connections/{c.name}/archive/").status_code == 403
        assert viewer_client.post(f"/connections/{c.name}/secret/", {"token": "hijack"}).status_code == 403
        assert Connection.objects.filter(pk=c.pk).exists()
        assert c.credentials.count() == 1

    def test_create_through_the_form(self, admin_client_):
        response = admin_client_.post("/connections/new/", {
            "name": "clever-form", "provider": "clever", "base_url": "https://api.clever.com",
            "test_interval": "300", "refresh_interval": "0", "enabled": "on",
            "option_test_path": "/v3.0/me", "secret_token": "form-TOKEN-123",
        })
        assert response.status_code == 302
        c = Connection.objects.get(name="clever-form")
        assert c.options == {"test_path": "/v3.0/me"}
        assert c.credentials.get().reveal() == {"token": "form-TOKEN-123"}
        page = admin_client_.get(f"/connections/{c.name}/")
        assert c.credentials.get().fingerprint in page.content.decode()
        assert b"form-TOKEN-123" not in page.content

    @pytest.mark.parametrize("data,field,message", [
        ({"provider": "nope"}, "provider", "Select a valid choice"),
        ({"secret_token": ""}, "secret_token", "required"),
        ({"base_url": "notaurl"}, "base_url", "absolute http(s) URL"),
        ({"base_url": "https://api.clever.com/a b"}, "base_url", "spaces"),
        ({"name": "Bad Name!"}, "name", "lowercase"),
    ])
    def test_bad_form_input_changes_nothing(self, admin_client_, data, field, message):
        post = {"name": "clever-bad", "provider": "clever", "base_url": "", "test_interval": "300",
                "refresh_interval": "0", "secret_token": "tok-xyz-123", **data}
        before = (Connection.objects.count(), Credential.objects.count())
        response = admin_client_.post("/connections/new/", post)
        assert response.status_code == 200
        assert message in response.content.decode()
        assert field in response.context["form"].errors  # on the field, and only there
        assert "__all__" not in response.context["form"].errors
        assert (Connection.objects.count(), Credential.objects.count()) == before
        assert b"tok-xyz-123" not in response.content  # a secret is never echoed back

    def test_duplicate_name_in_form(self, admin_client_):
        factories.connection("clever", name="dupe", secret={"token": "t1"})
        response = admin_client_.post("/connections/new/", {
            "name": "dupe", "provider": "clever", "test_interval": "300", "refresh_interval": "0",
            "secret_token": "t2"})
        assert "already exists" in response.content.decode()
        assert Credential.objects.count() == 1

    def test_replace_secret_page_verifies_first(self, admin_client_, vendors):
        c = factories.connection("cloverdx", sandbox=vendors)
        right = dict(DEMO_CREDENTIALS["cloverdx"])
        wrong = admin_client_.post(f"/connections/{c.name}/secret/", {**right, "password": "wrong-pass-123"})
        assert wrong.status_code == 200
        assert "did not accept the new secret" in wrong.content.decode() and "Nothing changed" in wrong.content.decode()
        assert c.credentials.get(state="active").version == 1
        assert b"wrong-pass-123" not in wrong.content
        vendors.vendor("cloverdx").add_credentials({**right, "password": "second-pass-456"})
        response = admin_client_.post(f"/connections/{c.name}/secret/", {**right, "password": "second-pass-456"})
        assert response.status_code == 302
        states = {x.version: x.state for x in c.credentials.all()}
        assert states[1] == "retired" and c.credentials.get(state="active").reveal()["password"] == "second-pass-456"
        page = admin_client_.get(f"/connections/{c.name}/secret/").content
        assert b"second-pass-456" not in page

    def test_replace_without_verifying_is_an_explicit_choice(self, admin_client_):
        c = factories.connection("cleverbridge", secret={"username": "u1", "password": "first-pass"})
        response = admin_client_.post(f"/connections/{c.name}/secret/",
                                      {"username": "u2", "password": "second-pass", "unverified": "1"})
        assert response.status_code == 302
        assert [x.state for x in c.credentials.order_by("version")] == ["retired", "active"]

    def test_audit_page_lists_changes_with_actor(self, admin_client_, admin_user):
        admin_client_.post("/connections/new/", {
            "name": "audited", "provider": "clever", "test_interval": "300", "refresh_interval": "0",
            "secret_token": "tok-audited"})
        c = Connection.objects.get(name="audited")
        admin_client_.post(f"/connections/{c.name}/secret/", {"token": "tok-audited-2", "unverified": "1"})
        admin_client_.post(f"/connections/{c.name}/archive/")
        html = admin_client_.get("/audit/").content.decode()
        for action in ("connection.create", "secret.replace", "connection.archive"):
            assert action in html
        assert html.count(admin_user.username) >= 3
        event = AuditEvent.objects.get(action="connection.create")
        assert event.ip == "127.0.0.1"
        assert "tok-audited" not in str(event.details)
