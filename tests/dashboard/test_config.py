"""Bad configuration stops start-up with one line naming the variable, not a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.process  # most tests start manage.py with a configuration of their own
ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "mHWpJZ5C_8lJthykFMT0jVbJunxHg-_GB5Z4P0YBXsU="


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in {
        "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SECRET_KEY", "DEBUG", "CREDENTIAL_KEYS", "CACHE_URL",
        "CELERY_BROKER_URL", "DEMO_MODE", "ALLOWED_HOSTS", "OUTBOUND_ALLOW_PRIVATE_NETWORKS", "HTTPS_ONLY", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    base.update({"DJANGO_SETTINGS_MODULE": "dashboard.settings", "SWITCHBOARD_SKIP_DOTENV": "1"}, **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True,
                          text=True, timeout=60)


def assert_one_line_naming(result, variable):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


class TestStartupConfiguration:
    def test_missing_secret_key_in_production(self):
        assert_one_line_naming(manage("check", DEBUG="false", CREDENTIAL_KEYS=GOOD_KEY), "SECRET_KEY")

    def test_malformed_database_url(self):
        result = manage("check", DEBUG="false", SECRET_KEY="x" * 50, CREDENTIAL_KEYS=GOOD_KEY,
                        DATABASE_URL="postgres//oops")
        assert_one_line_naming(result, "DATABASE_URL")

    def test_unknown_database_scheme(self):
        result = manage("check", DEBUG="false", SECRET_KEY="x" * 50, CREDENTIAL_KEYS=GOOD_KEY,
                        DATABASE_URL="mongo://db/x")
        assert_one_line_naming(result, "DATABASE_URL")

    def test_missing_credential_keys_in_production(self):
        assert_one_line_naming(manage("check", DEBUG="false", SECRET_KEY="x" * 50), "CREDENTIAL_KEYS")

    def test_malformed_credential_key(self):
        result = manage("check", DEBUG="false", SECRET_KEY="x" * 50, CREDENTIAL_KEYS=f"{GOOD_KEY},not-a-key")
        assert_one_line_naming(result, "CREDENTIAL_KEYS")

    @pytest.mark.parametrize("variable,value", [("DEBUG", "maybe"), ("LOG_RETENTION_DAYS", "ten"),
                                                ("CACHE_URL", "nonsense"), ("LOG_FORMAT", "xml"),
                                                ("METRICS_TOKEN", "short"), ("OIDC_ROLE_MAP", "ops=root"),
                                                ("SECOND_FACTOR_FOR_ADMINS", "sometimes")])
    def test_malformed_values(self, variable, value):
        env = {"DEBUG": "true", "SECRET_KEY": "x" * 50, "CREDENTIAL_KEYS": GOOD_KEY, variable: value}
        assert_one_line_naming(manage("check", **env), variable)

    def test_incomplete_single_sign_on_names_what_is_missing(self):
        env = {"DEBUG": "true", "SECRET_KEY": "x" * 50, "CREDENTIAL_KEYS": GOOD_KEY, "OIDC_RP_CLIENT_ID": "sb"}
        result = manage("check", **env)
        assert_one_line_naming(result, "OIDC_RP_CLIENT_SECRET")
        assert "OIDC_ROLE_MAP" in result.stderr and "OIDC_OP_DISCOVERY_URL" in result.stderr

    def test_good_production_configuration_starts(self):
        result = manage("check", DEBUG="false", SECRET_KEY="x" * 50, CREDENTIAL_KEYS=GOOD_KEY,
                        ALLOWED_HOSTS="switchboard.example.com")
        assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="false", SECRET_KEY="k" * 20 + "-a8Z!q2#Lm9$wP4^tR7&yB1*" * 2,
                    CREDENTIAL_KEYS=GOOD_KEY, ALLOWED_HOSTS="switchboard.example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


class TestDemoLoopbackPermission:
    """`make run`'s .env turns demo mode on; private networks are allowed only while it stays on."""

    SHOW = ["shell", "-c", "from django.conf import settings; print(settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS)"]
    BASE = {"DEBUG": "true", "SECRET_KEY": "x" * 50, "CREDENTIAL_KEYS": GOOD_KEY}

    def test_env_file_does_not_pin_the_permission(self, tmp_path):
        from dashboard import envfile

        envfile.main(tmp_path / ".env")
        text = (tmp_path / ".env").read_text()
        assert "DEMO_MODE=true" in text and "OUTBOUND_ALLOW_PRIVATE_NETWORKS" not in text

    @pytest.mark.parametrize("bind, site", [(None, "http://127.0.0.1:8000"), ("127.0.0.1:18200", "http://127.0.0.1:18200"),
                                            ("0.0.0.0:9000", "http://127.0.0.1:9000")])
    def test_env_file_site_url_is_where_make_run_serves(self, tmp_path, monkeypatch, bind, site):
        """Found with SWITCHBOARD_BIND=127.0.0.1:18200 make run: SITE_URL said :8000, so the links
        `manage.py users add` printed led nowhere."""
        from dashboard import envfile

        if bind:
            monkeypatch.setenv("SWITCHBOARD_BIND", bind)
        else:
            monkeypatch.delenv("SWITCHBOARD_BIND", raising=False)
        envfile.main(tmp_path / ".env")
        assert f"SITE_URL={site}\n" in (tmp_path / ".env").read_text()

    @pytest.mark.parametrize("demo, explicit, allowed", [
        ("true", None, "True"), ("false", None, "False"), ("true", "false", "False"), ("false", "true", "True")])
    def test_permission_follows_demo_mode_unless_set(self, demo, explicit, allowed):
        env = {**self.BASE, "DEMO_MODE": demo}
        if explicit:
            env["OUTBOUND_ALLOW_PRIVATE_NETWORKS"] = explicit
        result = manage(*self.SHOW, **env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == allowed


def test_var_dir_and_cache_key_prefix_come_from_the_environment(tmp_path):
    """A second instance on one machine keeps its state apart: SWITCHBOARD_VAR_DIR holds the SQLite
    file, the filesystem broker (kombu's control folder included) and static files; CACHE_URL's
    ?key_prefix= reaches Django (django-environ names it in lower case, which Django ignores)."""
    code = ("from django.conf import settings as s; import json; print(json.dumps([str(s.VAR_DIR), s.DATABASES['default']"
            "['NAME'], s.CELERY_BROKER_TRANSPORT_OPTIONS['control_folder'], str(s.STATIC_ROOT), "
            "s.CACHES['default'].get('KEY_PREFIX')]))")
    result = manage("shell", "-c", code, DEBUG="true", SWITCHBOARD_VAR_DIR=str(tmp_path),
                    CACHE_URL="redis://127.0.0.1:6379/5?key_prefix=second")
    assert result.returncode == 0, result.stderr
    var_dir, db, control, static, prefix = json.loads(result.stdout.strip().splitlines()[-1])
    assert var_dir == str(tmp_path)
    assert all(path.startswith(str(tmp_path)) for path in (db, control, static))
    assert prefix == "second"
    assert (tmp_path / "broker" / "control").is_dir()
