"""User management: the admin pages, the one-time set-password link, deactivation, the last-admin
rule, your own password change, and what reaches the audit trail (never a password or a token)."""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.db import close_old_connections
from django.test import Client

from connections.models import AuditEvent
from connections.selectors.users import active_admins
from connections.services import users as user_services
from connections.services.audit import Actor
from tests import factories

pytestmark = [pytest.mark.services, pytest.mark.django_db]
NEW_PASSWORD = "plum-orchard-Lantern-42"
LINK = re.compile(r'value="(https?://[^"]+/accounts/set-password/[^"]+)"')


def add_user(client, username="dana", role="operator"):
    """Add a user on the page; returns the response and the one-time link it shows."""
    response = client.post("/users/new/", {"username": username, "role": role})
    assert response.status_code == 200, response.content.decode()[:500]
    return response, LINK.search(response.content.decode()).group(1)


def set_password(link: str, password: str = NEW_PASSWORD, client: Client | None = None):
    """Follow the link in a fresh browser (no session) and choose a password."""
    client = client or Client()
    first = client.get(link)
    assert first.status_code == 302, "a valid link redirects to the form without the token in the URL"
    form_url = first["Location"]
    assert form_url.endswith("/set-password/") and link.rstrip("/").rsplit("/", 1)[1] not in form_url
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def signs_in(username: str, password: str) -> bool:
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302 and response["Location"] == "/"


class TestUserList:
    def test_admin_sees_every_user_with_role_status_and_last_sign_in(self, admin_client_, admin_user):
        factories.user("viewer", username="vic")
        gone = factories.user("operator", username="olga")
        gone.is_active = False
        gone.save()
        signs_in("vic", factories.PASSWORD)
        page = admin_client_.get("/users/")
        html = page.content.decode()
        assert page.status_code == 200
        rows = {r.username: r for r in page.context["users"]}
        assert rows["vic"].role == "viewer" and rows["vic"].last_login is not None
        assert rows["olga"].role == "operator" and not rows["olga"].is_active
        assert rows[admin_user.username].role == "admin"
        assert "deactivated" in html and "Reactivate" in html and "never" in html
        assert 'href="/users/"' in html  # the nav link

    @pytest.mark.parametrize("role", ["viewer", "operator"])
    def test_other_roles_get_403_and_no_nav_link(self, client, role):
        client.force_login(factories.user(role))
        assert client.get("/users/").status_code == 403
        assert client.post("/users/new/", {"username": "sneaky", "role": "admin"}).status_code == 403
        assert not User.objects.filter(username="sneaky").exists()
        assert 'href="/users/"' not in client.get("/").content.decode()


class TestAddUser:
    def test_link_is_shown_once_and_works_once(self, admin_client_):
        response, link = add_user(admin_client_)
        assert "shows the link once" in response.content.decode()
        assert response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]
        dana = User.objects.get(username="dana")
        assert not dana.has_usable_password() and dana.groups.get().name == "operator"
        token = link.rstrip("/").rsplit("/", 1)[1]
        assert token not in admin_client_.get("/users/").content.decode()
        assert token not in admin_client_.get("/audit/").content.decode()

        done = set_password(link)
        assert done.status_code == 302 and done["Location"] == "/accounts/login/"
        assert signs_in("dana", NEW_PASSWORD)
        again = Client().get(link)
        assert again.status_code == 200 and b"This link no longer works" in again.content

    def test_the_link_expires(self, admin_client_, settings):
        _, link = add_user(admin_client_)
        later = datetime.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT + 60)
        with mock.patch.object(PasswordResetTokenGenerator, "_now", return_value=later):
            response = Client().get(link)
        assert b"This link no longer works" in response.content
        assert not User.objects.get(username="dana").has_usable_password()

    def test_a_weak_or_mismatched_password_is_refused(self, admin_client_):
        _, link = add_user(admin_client_)
        client = Client()
        form_url = client.get(link)["Location"]
        short = client.post(form_url, {"new_password1": "short", "new_password2": "short"})
        assert short.status_code == 200 and b"too short" in short.content
        mismatch = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x"})
        assert b"didn" in mismatch.content  # "The two password fields didn't match."
        assert not User.objects.get(username="dana").has_usable_password()
        assert not AuditEvent.objects.filter(action="user.password_set").exists()

    @pytest.mark.parametrize("data,message", [
        ({"username": "", "role": "viewer"}, "This field is required"),
        ({"username": "bad name!", "role": "viewer"}, "Enter a valid username"),
        ({"username": "ok", "role": "root"}, "Select a valid choice"),
    ])
    def test_bad_input_changes_nothing(self, admin_client_, data, message):
        before = User.objects.count()
        response = admin_client_.post("/users/new/", data)
        assert response.status_code == 400 and message in response.content.decode()
        assert User.objects.count() == before and not AuditEvent.objects.filter(action="user.create").exists()

    def test_duplicate_name_any_case(self, admin_client_):
        factories.user("viewer", username="Dana")
        response = admin_client_.post("/users/new/", {"username": "dana", "role": "viewer"})
        assert response.status_code == 400 and "already exists" in response.content.decode()


class TestRolesAndDeactivation:
    def test_change_role_takes_effect_and_is_audited(self, admin_client_):
        vic = factories.user("viewer", username="vic")
        response = admin_client_.post(f"/users/{vic.pk}/role/", {"role": "operator"}, follow=True)
        assert "vic is now operator" in response.content.decode()
        vic = User.objects.get(pk=vic.pk)
        assert vic.has_perm("connections.rotate_credentials") and not vic.has_perm("connections.manage_secrets")
        event = AuditEvent.objects.get(action="user.role")
        assert event.details == {"user": "vic", "from": "viewer", "to": "operator"}

    def test_deactivated_user_cannot_sign_in_and_their_session_ends(self, admin_client_):
        vic = factories.user("viewer", username="vic")
        vic_browser = Client()
        vic_browser.post("/accounts/login/", {"username": "vic", "password": factories.PASSWORD})
        assert vic_browser.get("/").status_code == 200
        response = admin_client_.post(f"/users/{vic.pk}/active/", {"active": "0"}, follow=True)
        assert "vic is deactivated" in response.content.decode()
        assert vic_browser.get("/").status_code == 302  # the open session is over
        assert not signs_in("vic", factories.PASSWORD)
        admin_client_.post(f"/users/{vic.pk}/active/", {"active": "1"})
        assert signs_in("vic", factories.PASSWORD)
        assert list(AuditEvent.objects.filter(action__startswith="user.").values_list("action", flat=True)) == [
            "user.activate", "user.deactivate"]

    def test_a_deactivated_users_link_does_not_work(self, admin_client_):
        _, link = add_user(admin_client_)
        dana = User.objects.get(username="dana")
        admin_client_.post(f"/users/{dana.pk}/active/", {"active": "0"})
        assert b"This link no longer works" in Client().get(link).content

    def test_the_last_admin_cannot_demote_or_deactivate_themselves(self, admin_client_, admin_user):
        response = admin_client_.post(f"/users/{admin_user.pk}/role/", {"role": "viewer"}, follow=True)
        assert "last active admin" in response.content.decode()
        response = admin_client_.post(f"/users/{admin_user.pk}/active/", {"active": "0"}, follow=True)
        assert "last active admin" in response.content.decode()
        admin_user.refresh_from_db()
        assert admin_user.is_active and admin_user.has_perm("connections.manage_users")
        assert not AuditEvent.objects.filter(action__in=["user.role", "user.deactivate"]).exists()

    def test_a_deactivated_admin_does_not_count(self, admin_user):
        other = factories.user("admin", username="other-admin")
        user_services.user_set_active(user=other, active=False, actor=Actor())
        with pytest.raises(ValidationError, match="last active admin"):
            user_services.user_set_role(user=admin_user, role="operator", actor=Actor())

    def test_with_two_admins_one_may_step_down(self, admin_client_, admin_user):
        factories.user("admin", username="other-admin")
        admin_client_.post(f"/users/{admin_user.pk}/role/", {"role": "operator"})
        admin_user.refresh_from_db()
        assert not admin_user.has_perm("connections.manage_users")
        assert admin_client_.get("/users/").status_code == 403

    def test_a_demoted_superuser_loses_every_admin_power(self, admin_user):
        root = User.objects.create_user(username="root", password=factories.PASSWORD, is_superuser=True)
        user_services.user_set_role(user=root, role="viewer", actor=Actor())
        root = User.objects.get(pk=root.pk)
        assert not root.is_superuser and not root.has_perm("connections.run_tests")

    @pytest.mark.django_db(transaction=True)
    def test_two_admins_demoting_each_other_at_once_leave_one_admin(self):
        a, b = factories.user("admin", username="adm-a"), factories.user("admin", username="adm-b")
        barrier, outcomes = threading.Barrier(2), []

        def demote(user):
            barrier.wait()
            try:
                user_services.user_set_role(user=User.objects.get(pk=user.pk), role="viewer", actor=Actor())
                outcomes.append("demoted")
            except ValidationError:
                outcomes.append("refused")
            finally:
                close_old_connections()

        threads = [threading.Thread(target=demote, args=(u,)) for u in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["demoted", "refused"]
        assert active_admins().count() == 1


class TestResetPassword:
    def test_old_password_stops_working_and_a_new_link_is_shown(self, admin_client_):
        vic = factories.user("viewer", username="vic")
        vic_browser = Client()
        vic_browser.post("/accounts/login/", {"username": "vic", "password": factories.PASSWORD})
        response = admin_client_.post(f"/users/{vic.pk}/reset-password/")
        link = LINK.search(response.content.decode()).group(1)
        assert "no longer works" in response.content.decode()
        assert not signs_in("vic", factories.PASSWORD)
        assert vic_browser.get("/").status_code == 302
        assert set_password(link).status_code == 302
        assert signs_in("vic", NEW_PASSWORD)
        assert AuditEvent.objects.filter(action="user.password_reset", details={"user": "vic"}).exists()

    def test_a_newer_link_replaces_the_older_one(self, admin_client_):
        _, first = add_user(admin_client_)
        dana = User.objects.get(username="dana")
        response = admin_client_.post(f"/users/{dana.pk}/reset-password/")
        second = LINK.search(response.content.decode()).group(1)
        assert b"This link no longer works" in Client().get(first).content
        assert set_password(second).status_code == 302


class TestOwnPassword:
    @pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
    def test_everyone_can_change_their_password(self, role):
        user = factories.user(role)
        browser, other_session = Client(), Client()
        for c in (browser, other_session):
            c.post("/accounts/login/", {"username": user.username, "password": factories.PASSWORD})
        assert 'href="/accounts/security/"' in browser.get("/").content.decode()
        assert 'href="/accounts/password/"' in browser.get("/accounts/security/").content.decode()
        wrong = browser.post("/accounts/password/", {"old_password": "nope", "new_password1": NEW_PASSWORD,
                                                     "new_password2": NEW_PASSWORD})
        assert wrong.status_code == 200 and "incorrectly" in wrong.content.decode()
        done = browser.post("/accounts/password/", {"old_password": factories.PASSWORD,
                                                    "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
                            follow=True)
        assert "Your password was changed" in done.content.decode()
        assert browser.get("/").status_code == 200  # this session stays
        assert other_session.get("/").status_code == 302  # the other one ends
        assert signs_in(user.username, NEW_PASSWORD) and not signs_in(user.username, factories.PASSWORD)
        assert AuditEvent.objects.filter(action="user.password_change", actor=user).exists()

    def test_a_weak_new_password_is_refused(self, viewer_client, viewer):
        response = viewer_client.post("/accounts/password/", {"old_password": factories.PASSWORD,
                                                              "new_password1": "12345678", "new_password2": "12345678"})
        assert "too short" in response.content.decode() and "entirely numeric" in response.content.decode()
        viewer.refresh_from_db()
        assert viewer.check_password(factories.PASSWORD)


def test_no_password_or_token_in_html_audit_or_logs(admin_client_, caplog):
    caplog.set_level(logging.DEBUG)
    response, link = add_user(admin_client_)
    token = link.rstrip("/").rsplit("/", 1)[1]
    browser = Client()
    form_page = browser.get(browser.get(link)["Location"])
    browser.post(form_page.wsgi_request.path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    signed_in = Client()
    signed_in.post("/accounts/login/", {"username": "dana", "password": NEW_PASSWORD})
    changed = "second-Orchard-Lantern-77"
    signed_in.post("/accounts/password/", {"old_password": NEW_PASSWORD, "new_password1": changed,
                                            "new_password2": changed})
    assert signs_in("dana", changed)
    pages = [admin_client_.get(url).content.decode() for url in ("/users/", "/audit/")]
    pages.append(signed_in.get("/accounts/password/").content.decode())
    pages.append(form_page.content.decode())
    audit = [str(e.details) for e in AuditEvent.objects.all()]
    assert {"user.create", "user.password_set", "user.password_change"} <= set(
        AuditEvent.objects.values_list("action", flat=True))
    logs = [r.getMessage() for r in caplog.records]
    for secret in (NEW_PASSWORD, changed, token):
        for text in pages + audit + logs:
            assert secret not in text
    assert User.objects.get(username="dana").password.startswith("md5$")  # stored hashed
