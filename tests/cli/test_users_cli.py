"""`manage.py users`: add (link or password on stdin), list, set-role, deactivate, reactivate,
reset-password; exit codes 0 / 2, --json output and errors, audit rows, no password echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection as db_connection
from django.test import Client

from connections.models import AuditEvent
from tests import factories
from tests.cli import run_cli

pytestmark = [pytest.mark.services, pytest.mark.django_db]
ROOT = Path(__file__).resolve().parents[2]
STRONG = "quiet-Meadow-Lantern-88"


def users(*args, stdin=None):
    return run_cli(*args, stdin=stdin, command="users")


def signs_in(username: str, password: str) -> bool:
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302 and response["Location"] == "/"


class TestAdd:
    def test_add_prints_a_one_time_link_that_works(self):
        r = users("add", "erin", "--role", "operator", "--site-url", "https://sb.example.com", "--json")
        assert r.code == 0, r.err
        data = r.json()
        assert data["username"] == "erin" and data["role"] == "operator" and data["has_password"] is False
        assert data["set_password_url"] == "https://sb.example.com" + data["set_password_path"]
        assert data["expires_at"]
        client = Client()
        form_url = client.get(data["set_password_path"])["Location"]
        client.post(form_url, {"new_password1": STRONG, "new_password2": STRONG})
        assert signs_in("erin", STRONG)
        event = AuditEvent.objects.get(action="user.create")
        assert event.actor_label.startswith("cli:") and event.details["first_password"] == "link"

    def test_text_output_without_a_site_url_says_how_to_use_the_path(self, settings):
        settings.SITE_URL = ""
        r = users("add", "erin", "--role", "viewer")
        assert r.code == 0 and "One-time set-password link" in r.out and "/accounts/set-password/" in r.out
        assert "set SITE_URL" in r.out

    def test_password_from_stdin(self):
        r = users("add", "frank", "--role", "viewer", "--json", stdin={"password": STRONG})
        assert r.code == 0, r.err
        assert STRONG not in r.out + r.err
        assert r.json()["has_password"] is True and "set_password_url" not in r.json()
        assert signs_in("frank", STRONG)
        assert AuditEvent.objects.get(action="user.create").details["first_password"] == "given"

    @pytest.mark.parametrize("args,stdin,message", [
        (["--role", "root"], None, "unknown role 'root'"),
        (["--role", "viewer"], {"password": "Xq7-brief"}, "too short"),
        (["--role", "viewer"], {"password": "password1234"}, "too common"),
        (["--role", "viewer"], "not json{", "not valid JSON"),
        (["--role", "viewer"], {"pass": "x"}, 'one key, e.g. {"password"'),
    ])
    def test_bad_input_exits_2_and_changes_nothing(self, args, stdin, message):
        r = users("add", "gina", *args, stdin=stdin)
        assert r.code == 2 and message in r.err, r.err
        assert not User.objects.filter(username="gina").exists()
        assert not AuditEvent.objects.exists()
        if isinstance(stdin, dict) and "password" in stdin:
            assert stdin["password"] not in r.err + r.out

    def test_bad_name_and_duplicate(self):
        factories.user("viewer", username="Gina")
        assert users("add", "gina", "--role", "viewer").code == 2
        r = users("add", "has space", "--role", "viewer", "--json")
        assert r.code == 2
        assert r.json()["error"]["code"] == "bad_input" and "username" in r.json()["error"]["message"]
        empty = users("add", " ", "--role", "viewer")
        assert empty.code == 2 and "username: this field is required" in empty.err
        assert list(User.objects.values_list("username", flat=True)) == ["Gina"]


class TestListAndChanges:
    def test_list(self):
        factories.user("viewer", username="vic")
        factories.user("admin", username="ada")
        items = users("list", "--json").json()
        assert [(i["username"], i["role"], i["active"]) for i in items] == [("ada", "admin", True),
                                                                             ("vic", "viewer", True)]
        assert {"last_login", "has_password", "date_joined"} <= items[0].keys()
        text = users("list").out
        assert "NAME" in text and "vic" in text and "viewer" in text and "never" in text

    def test_set_role_deactivate_reactivate(self):
        factories.user("admin", username="ada")
        vic = factories.user("viewer", username="vic")
        r = users("set-role", "vic", "--role", "operator", "--json")
        assert r.code == 0 and r.json()["role"] == "operator" and r.json()["changed"] is True
        assert users("set-role", "vic", "--role", "operator").out.startswith("vic is operator already")
        assert users("deactivate", "vic").code == 0
        assert not User.objects.get(pk=vic.pk).is_active and not signs_in("vic", factories.PASSWORD)
        assert users("reactivate", "vic", "--json").json()["active"] is True
        assert signs_in("vic", factories.PASSWORD)
        actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
        assert actions == ["user.role", "user.deactivate", "user.activate"]
        assert all(label.startswith("cli:") for label in AuditEvent.objects.values_list("actor_label", flat=True))

    def test_last_admin_is_kept(self):
        factories.user("admin", username="ada")
        for args in (["set-role", "ada", "--role", "viewer", "--json"], ["deactivate", "ada", "--json"]):
            r = users(*args)
            assert r.code == 2
            assert r.json()["error"]["code"] == "last_admin" and "last active admin" in r.json()["error"]["message"]
        assert User.objects.get(username="ada").is_active and not AuditEvent.objects.exists()

    def test_unknown_user(self):
        r = users("deactivate", "ghost", "--json")
        assert r.code == 2 and r.json() == {"error": {"code": "not_found",
                                                      "message": "no user named 'ghost' (see `users list`)"}}
        assert "no user named 'ghost'" in users("set-role", "ghost", "--role", "viewer").err

    def test_reset_password(self):
        factories.user("viewer", username="vic")
        r = users("reset-password", "vic", "--json")
        assert r.code == 0 and r.json()["has_password"] is False
        assert not signs_in("vic", factories.PASSWORD)
        assert Client().get(r.json()["set_password_path"]).status_code == 302  # the link is valid


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_a_real_process_reads_the_password_from_stdin_and_exits_2_on_bad_input():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
           "TEST_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_connection.settings_dict['NAME']}"}
    cmd = [sys.executable, "manage.py", "users", "add", "proc-user", "--role", "viewer", "--json"]
    ok = subprocess.run(cmd, cwd=ROOT, env=env, input=f'{{"password": "{STRONG}"}}', capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert STRONG not in ok.stdout + ok.stderr
    again = subprocess.run(cmd, cwd=ROOT, env=env, input=f'{{"password": "{STRONG}"}}', capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 2 and '"code": "bad_input"' in again.stdout and "already exists" in again.stdout
    assert User.objects.get(username="proc-user").check_password(STRONG)
