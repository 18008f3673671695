"""Declarative vendors: definitions checked by line and field, the registry that loads good files
and lists bad ones, the upload page, `manage.py vendors`, and a declarative vendor used like any
other (CLI add, test over loopback, log rows) — issue 15."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from connections.models import AuditEvent, Connection, RequestLog
from connections.outbound.client import RequestSpec, send
from connections.providers import PROVIDERS
from connections.providers.vendor_files import load_text
from connections.sandbox import DEMO_CREDENTIALS
from tests import factories
from tests.cli import run_cli
from tests.providers.helpers import USER, run_test

pytestmark = [pytest.mark.services, pytest.mark.django_db]
SHIPPED = Path(django_settings.BASE_DIR) / "vendors"

# Stripe's other documented scheme: the secret key as the Basic user name, no password.
STRIPE_BASIC = """\
key: stripe-basic
name: Stripe (Basic)
allowed_hosts: [api.stripe.com]
auth:
  scheme: basic
  username_label: Secret key
  username_secret: true
  password_required: false
tests:
  - path: /v1/balance
    proves: the key may read the balance
errors:
  code: [/error/code, /error/type]
  message: /error/message
  request_id_header: Request-Id
"""

BROKEN = """\
key: acme
name: Acme
allowed_hosts: [api.acme.example]
auth:
  scheme: bearr
tests:
  - path: /ping
    proves: it answers
rate_limit:
  limits: {per_minute: 60, scope: everyone}
"""


@pytest.fixture
def providers_dir(tmp_path, settings):
    """PROVIDERS_DIR in a temporary folder holding the shipped examples."""
    for f in SHIPPED.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    settings.PROVIDERS_DIR = tmp_path
    PROVIDERS.refresh(force=True)
    yield tmp_path
    settings.PROVIDERS_DIR = SHIPPED
    PROVIDERS.refresh(force=True)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    PROVIDERS.refresh(force=True)
    return path


class TestDefinitionChecks:
    def test_the_shipped_examples_are_valid(self):
        for path in SHIPPED.glob("*.yaml"):
            definition, problems = load_text(path.read_text())
            assert problems == [] and definition.key == path.stem

    def test_problems_carry_line_and_field(self):
        _, problems = load_text(BROKEN)
        found = {(p.line, p.field) for p in problems}
        assert (5, "auth.scheme") in found and (10, "rate_limit.limits.scope") in found
        assert "bearr" in next(p.message for p in problems if p.field == "auth.scheme")

    def test_unknown_fields_suggest_the_known_one(self):
        _, problems = load_text(STRIPE_BASIC.replace("tests:", "test:"))
        assert any(p.field == "test" and "did you mean tests?" in p.message for p in problems)

    def test_duplicate_keys_and_aliases_are_refused(self):
        _, problems = load_text(STRIPE_BASIC + "name: again\n")
        assert any(p.field == "name" and "given twice (first on line 2)" in p.message for p in problems)
        _, problems = load_text("a: &x [1]\nb: *x\n")
        assert "anchors and aliases" in problems[0].message

    def test_a_base_url_off_the_allowed_hosts_and_401_retries_are_refused(self):
        text = STRIPE_BASIC.replace("name: Stripe (Basic)", "name: S\nbase_url: https://evil.example")
        text += "retry:\n  statuses: [401, 503]\n"
        _, problems = load_text(text)
        assert {p.field for p in problems} >= {"base_url", "retry.statuses"}

    def test_not_yaml_says_where(self):
        _, problems = load_text("key: github\nname: [unclosed\n")
        assert problems[0].line in (2, 3) and "not valid YAML" in problems[0].message


class TestRegistry:
    def test_a_bad_file_never_stops_the_others(self, providers_dir):
        write(providers_dir, "acme.yaml", BROKEN)
        write(providers_dir, "zz-github-again.yaml", (providers_dir / "github.yaml").read_text())
        assert "github" in PROVIDERS and "stripe" in PROVIDERS and "acme" not in PROVIDERS
        files = {f.path.name: f for f in PROVIDERS.files()}
        assert not files["acme.yaml"].ok and files["acme.yaml"].problems[0].field == "auth.scheme"
        assert "already defined by github.yaml" in files["zz-github-again.yaml"].problems[0].message

    def test_a_built_in_key_cannot_be_taken(self, providers_dir):
        write(providers_dir, "clever.yaml", STRIPE_BASIC.replace("key: stripe-basic", "key: clever"))
        assert PROVIDERS["clever"].__class__.__name__ == "Clever"
        assert "built-in" in next(f for f in PROVIDERS.files() if f.path.name == "clever.yaml").problems[0].message

    def test_a_connection_whose_definition_went_missing_sends_nothing(self, providers_dir, vendors, admin_client_):
        connection = factories.connection("github", sandbox=vendors)
        (providers_dir / "github.yaml").unlink()
        PROVIDERS.refresh(force=True)
        connection = Connection.objects.get(pk=connection.pk)
        result = send(connection, RequestSpec("GET", "/user"), actor=USER)
        assert not result.ok and "missing from PROVIDERS_DIR" in result.error_message
        assert vendors.stats("github")["requests"] == 0 and RequestLog.objects.filter(connection=connection).exists()
        page = admin_client_.get(f"/connections/{connection.name}/")
        assert page.status_code == 200 and "github (definition unavailable)" in page.content.decode()
        listing = admin_client_.get("/vendors/").content.decode()
        assert "whose definition is missing or has errors" in listing


class TestUploadPage:
    def test_only_admins_may_upload(self, viewer_client, operator_client):
        assert viewer_client.get("/vendors/upload/").status_code == 403
        assert operator_client.post("/vendors/upload/", {"definition": STRIPE_BASIC, "action": "save"}).status_code == 403
        assert viewer_client.get("/vendors/").status_code == 200

    def test_problems_by_line_and_field_and_nothing_saved(self, providers_dir, admin_client_):
        response = admin_client_.post("/vendors/upload/", {"definition": BROKEN, "action": "save"})
        html = response.content.decode()
        assert response.status_code == 400 and "nothing was saved" in html
        assert "line 5" in html and "auth.scheme" in html and "line 10" in html
        assert not (providers_dir / "acme.yaml").exists() and not AuditEvent.objects.filter(action="vendor.add").exists()

    def test_check_then_save_then_use_it_from_the_cli(self, providers_dir, admin_client_, vendors):
        checked = admin_client_.post("/vendors/upload/", {"definition": STRIPE_BASIC, "action": "check"})
        assert checked.status_code == 200 and "The definition is valid" in checked.content.decode()
        assert not (providers_dir / "stripe-basic.yaml").exists()
        saved = admin_client_.post("/vendors/upload/", {"definition": STRIPE_BASIC, "action": "save"})
        assert saved.status_code == 302 and (providers_dir / "stripe-basic.yaml").read_text() == STRIPE_BASIC
        event = AuditEvent.objects.get(action="vendor.add")
        assert event.details["vendor"] == "stripe-basic" and event.details["allowed_hosts"] == ["api.stripe.com"]
        listing = admin_client_.get("/vendors/").content.decode()
        assert "Stripe (Basic)" in listing and "stripe-basic.yaml" in listing
        # Like any vendor: `connections add NAME --provider <key>` with the secret on stdin, then a test.
        key = DEMO_CREDENTIALS["stripe"]["token"]
        added = run_cli("add", "stripe-b", "--provider", "stripe-basic", "--base-url", vendors.base_url("stripe"),
                        "--json", stdin={"username": key})
        assert added.code == 0, added.out + added.err
        tested = run_cli("test", "stripe-b", "--json")
        assert tested.code == 0 and tested.json()["ok"] and tested.json()["vendor_request_id"].startswith("req_")
        row = RequestLog.objects.filter(connection__name="stripe-b").latest("id")
        assert key not in row.request_excerpt and "Authorization: [REDACTED]" in row.request_excerpt

    def test_replacing_a_file_is_audited_as_a_replacement(self, providers_dir, admin_client_):
        text = (providers_dir / "stripe.yaml").read_text().replace("name: Stripe", "name: Stripe Payments")
        assert admin_client_.post("/vendors/upload/", {"definition": text, "action": "save"}).status_code == 302
        assert PROVIDERS["stripe"].label == "Stripe Payments"
        assert AuditEvent.objects.filter(action="vendor.replace", details__vendor="stripe").exists()

    def test_an_uploaded_file_is_read_too(self, providers_dir, admin_client_):
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("mine.yaml", BROKEN.encode(), content_type="application/yaml")
        response = admin_client_.post("/vendors/upload/", {"file": upload, "action": "check"})
        assert response.status_code == 400 and "auth.scheme" in response.content.decode()


class TestSchemes:
    def test_api_key_in_the_query_is_redacted_in_the_log(self, providers_dir, vendors):
        write(providers_dir, "gh-query.yaml", STRIPE_BASIC.replace("key: stripe-basic", "key: gh-query").replace(
            "api.stripe.com", "api.github.com").replace(
            "  scheme: basic\n  username_label: Secret key\n  username_secret: true\n  password_required: false\n",
            "  scheme: api_key\n  in: query\n  name: access_key\n"))
        secret = "qk_4c1f0e9b7a2d48e6b3f5a1c9d7e2b8f0"
        connection = factories.connection("gh-query", base_url=vendors.base_url("github"),
                                          secret={"api_key": secret})
        result = send(connection, RequestSpec("GET", "/user"), actor=USER)
        assert result.status_code == 401  # the twin wants a bearer token; the request was sent and logged
        row = RequestLog.objects.get(pk=result.log_ids[0])
        assert "access_key=" in row.path and secret not in row.path and secret not in row.request_excerpt

    def test_oauth2_token_url_must_be_https_on_an_allowed_host(self):
        text = STRIPE_BASIC.replace(
            "  scheme: basic\n  username_label: Secret key\n  username_secret: true\n  password_required: false\n",
            "  scheme: oauth2_refresh\n  token_url: https://tokens.elsewhere.example/oauth/token\n"
            "  authorize_url: http://api.stripe.com/authorize\n")
        _, problems = load_text(text)
        by_field = {p.field: p.message for p in problems}
        assert "not one of allowed_hosts" in by_field["auth.token_url"]
        assert "must be an https URL" in by_field["auth.authorize_url"]


class TestLikeABuiltIn:
    def test_created_on_the_new_connection_form_and_tested_on_its_page(self, admin_client_, vendors):
        response = admin_client_.post("/connections/new/", {
            "name": "github-form", "provider": "github", "base_url": vendors.base_url("github"),
            "test_interval": "300", "refresh_interval": "0", "enabled": "on",
            "secret_token": DEMO_CREDENTIALS["github"]["token"]})
        assert response.status_code == 302, response.content.decode()[:2000]
        tested = admin_client_.post("/connections/github-form/test/", headers={"HX-Request": "true"})
        assert tested.status_code == 200
        connection = Connection.objects.get(name="github-form")
        assert connection.health == "ok" and connection.rl_limit == 5000
        page = admin_client_.get("/connections/github-form/").content.decode()
        assert "GitHub REST API" in page and "GET /user: the token is valid" in page
        headroom = admin_client_.get("/connections/github-form/headroom/", headers={"HX-Request": "true"})
        assert "of 5,000 left" in headroom.content.decode() and '<span class="mono">core</span>' in headroom.content.decode()

    def test_the_form_refuses_a_base_url_off_the_allowed_hosts(self, admin_client_):
        response = admin_client_.post("/connections/new/", {
            "name": "github-evil", "provider": "github", "base_url": "https://evil.example",
            "test_interval": "300", "refresh_interval": "0", "secret_token": "t0ken-abc"})
        assert response.status_code == 200 and "not one of the hosts" in response.content.decode()
        assert not Connection.objects.filter(name="github-evil").exists()

    def test_egress_ip_scope_is_shared_by_every_connection(self, providers_dir, settings):
        settings.OUTBOUND_EGRESS_ID = "eu-1"
        write(providers_dir, "shared.yaml", STRIPE_BASIC.replace("key: stripe-basic", "key: shared")
              + "rate_limit:\n  limits: {per_second: 10, concurrency: 2, scope: egress_ip}\n")
        a = PROVIDERS["shared"].throttle_plan(connection_id=1, fingerprint="aaa")
        assert a == PROVIDERS["shared"].throttle_plan(connection_id=2, fingerprint="bbb")
        assert a.block_scope == "shared:egress:eu-1"
        assert {(r.kind, r.limit) for r in a.rules} == {("concurrency", 2), ("pace", 10)}


class TestVendorsCommand:
    def test_check_prints_file_line_field_and_exits_2(self, providers_dir, tmp_path_factory):
        bad = tmp_path_factory.mktemp("defs") / "acme.yaml"
        bad.write_text(BROKEN)
        result = run_cli("check", str(bad), command="vendors")
        assert result.code == 2 and f"{bad}:5: auth.scheme: must be one of" in result.out
        as_json = run_cli("check", str(bad), "--json", command="vendors").json()
        assert as_json["ok"] is False and {"line": 5, "field": "auth.scheme"}.items() <= as_json["files"][0]["problems"][0].items()

    def test_check_of_the_folder_is_0_when_every_file_is_valid(self, providers_dir):
        result = run_cli("check", command="vendors")
        assert result.code == 0 and "github.yaml: ok" in result.out and "stripe.yaml: ok" in result.out
        write(providers_dir, "acme.yaml", BROKEN)
        assert run_cli("check", command="vendors").code == 2

    def test_list_names_built_in_and_declarative(self, providers_dir):
        listed = run_cli("list", "--json", command="vendors").json()
        kinds = {v["key"]: v["kind"] for v in listed["vendors"]}
        assert kinds["clever"] == "built-in" and kinds["github"] == "declarative"


def test_the_demo_creates_the_declarative_examples(settings, vendors):
    settings.DEMO_MODE = True
    settings.SANDBOX_PORT = vendors.port
    from django.core.management import call_command

    call_command("demo")
    github = Connection.objects.get(name="demo-github")
    assert run_test(github).ok and Connection.objects.filter(name="demo-stripe").exists()
