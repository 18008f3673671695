"""The connections CLI: add/list/show/export/import, exit codes and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection as db_connection

from connections.models import AuditEvent, Connection, Credential
from tests.cli import run_cli

pytestmark = [pytest.mark.services, pytest.mark.django_db]
ROOT = Path(__file__).resolve().parents[2]


class TestAdd:
    def test_add_then_list_and_show(self):
        r = run_cli("add", "clever-prod", "--provider", "clever", "--option", "test_path=/v3.0/me",
                    stdin={"token": "cli-TOKEN-1234567"})
        assert r.code == 0, r.err
        items = run_cli("list", "--json").json()
        assert [i["name"] for i in items] == ["clever-prod"]
        item = items[0]
        assert {"name", "provider", "base_url", "health", "last_test_at", "credential_version",
                "credential_fingerprint", "rate_limit"} <= item.keys()
        assert item["rate_limit"].keys() >= {"limit", "remaining", "reset_at", "blocked_until"}
        assert item["base_url"] == "https://api.clever.com" and item["credential_version"] == 1
        shown = run_cli("show", "clever-prod", "--json")
        assert shown.json()["options"]["test_path"] == "/v3.0/me"
        for out in (json.dumps(items), shown.out, run_cli("show", "clever-prod").out, run_cli("list").out):
            assert "cli-TOKEN-1234567" not in out
        assert AuditEvent.objects.get(action="connection.create").actor_label.startswith("cli:")

    @pytest.mark.parametrize("args,stdin,message", [
        (["--provider", "nope"], {"token": "t"}, "unknown provider"),
        (["--provider", "clever"], {}, "token: this field is required"),
        (["--provider", "clever"], "not json{", "not valid JSON"),
        (["--provider", "clever"], "", "standard input is empty"),
        (["--provider", "clever"], "[1, 2]", "must be a JSON object"),
        (["--provider", "clever", "--base-url", "notaurl"], {"token": "t"}, "base_url"),
        (["--provider", "clever", "--option", "novalue"], {"token": "t"}, "KEY=VALUE"),
        (["--provider", "clever", "--option", "bogus=1"], {"token": "t"}, "unknown option"),
        (["--provider", "teletracker"], {"username": "u", "password": "p", "auth_scheme": "integrator"},
         "account_id"),
    ])
    def test_bad_input_changes_nothing(self, args, stdin, message):
        r = run_cli("add", "new-conn", *args, stdin=stdin)
        assert r.code == 2
        assert message in r.err
        assert not Connection.objects.exists() and not Credential.objects.exists()

    def test_duplicate_name(self):
        assert run_cli("add", "dup", "--provider", "clever", stdin={"token": "a"}).code == 0
        r = run_cli("add", "dup", "--provider", "cleanlist", stdin={"token": "b"})
        assert (r.code, "already exists" in r.err) == (2, True)
        assert Connection.objects.get().provider == "clever"

    def test_show_unknown(self):
        r = run_cli("show", "ghost")
        assert r.code == 2 and "no connection named 'ghost'" in r.err


class TestExportImport:
    def test_round_trip_without_secrets(self, tmp_path):
        run_cli("add", "cb", "--provider", "cleverbridge", "--option", "accept_format=xml",
                stdin={"username": "exporter", "password": "export-PASSWORD-1"})
        run_cli("add", "cl", "--provider", "cleanlist", stdin={"token": "export-TOKEN-2"})
        exported = run_cli("export").out
        assert "export-PASSWORD-1" not in exported and "export-TOKEN-2" not in exported
        assert "exporter" not in exported  # nothing from the secret at all
        # Into another installation: here, the same one under new names (names are never reused).
        data = json.loads(exported)
        for entry in data["connections"]:
            entry["name"] += "-copy"
        path = tmp_path / "export.json"
        path.write_text(json.dumps(data))
        r = run_cli("import", str(path))
        assert r.code == 0, r.err
        assert sorted(Connection.objects.values_list("name", flat=True)) == ["cb", "cb-copy", "cl", "cl-copy"]
        assert Connection.objects.get(name="cb-copy").options == {"accept_format": "xml"}
        assert not Connection.objects.get(name="cb-copy").credentials.exists()

    def test_import_validates_everything_first(self, tmp_path):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({"format": 1, "connections": [
            {"name": "good-one", "provider": "clever", "base_url": "https://api.clever.com"},
            {"name": "bad-one", "provider": "unknown-vendor", "base_url": "https://x.example"},
        ]}))
        r = run_cli("import", str(path))
        assert r.code == 2 and "unknown-vendor" in r.err and "nothing was imported" in r.err
        assert not Connection.objects.exists()

    @pytest.mark.parametrize("content,message", [
        ("{nope", "not valid JSON"),
        ('{"connections": [{"name": "x", "provider": "clever", "secret": {"token": "t"}}]}', "no secrets"),
        ('{"connections": "x"}', "expected"),
    ])
    def test_import_rejects_bad_files(self, tmp_path, content, message):
        path = tmp_path / "f.json"
        path.write_text(content)
        r = run_cli("import", str(path))
        assert r.code == 2 and message in r.err

    def test_import_missing_file(self):
        r = run_cli("import", "/nonexistent/file.json")
        assert r.code == 2 and "cannot read" in r.err


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_exit_code_from_a_real_process():
    """The CLI as operators run it: a separate process, secret on stdin, exit codes."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
           "TEST_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_connection.settings_dict['NAME']}"}
    cmd = [sys.executable, "manage.py", "connections", "add", "proc-conn", "--provider", "clever"]
    ok = subprocess.run(cmd, cwd=ROOT, env=env, input='{"token": "proc-TOKEN-77"}', capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    again = subprocess.run(cmd, cwd=ROOT, env=env, input="garbage", capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "not valid JSON" in again.stderr and "garbage" not in again.stderr
    assert Connection.objects.filter(name="proc-conn").exists()
