"""The Vendors page and the upload of a definition in Chromium, at 1366x768 and 390x844: a broken
file beside good ones is listed with its problems by line and field; an upload is checked, its
problems shown, and a valid one saved and listed."""

from __future__ import annotations

import re
import shutil

import pytest

from connections.providers import PROVIDERS
from tests import factories
from tests.e2e.conftest import sign_in, take_screenshot
from tests.e2e.test_layout import MEASURE, SIZES
from tests.providers.test_vendors import BROKEN, SHIPPED, STRIPE_BASIC

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def folder(tmp_path, settings):
    for f in SHIPPED.glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "acme-with-a-rather-long-file-name.yaml").write_text(BROKEN + "retry:\n  max_attemps: 3\n")
    settings.PROVIDERS_DIR = tmp_path
    PROVIDERS.refresh(force=True)
    yield tmp_path
    settings.PROVIDERS_DIR = SHIPPED
    PROVIDERS.refresh(force=True)


@pytest.mark.parametrize("size", list(SIZES))
def test_vendors_page_and_upload(browser, live_server, folder, size):
    admin = factories.user("admin")
    factories.connection("github", name="github-prod", base_url="https://api.github.com", secret={"token": "t"})
    options = {"viewport": SIZES[size], "base_url": live_server.url}
    if size == "phone":
        options.update(is_mobile=True, has_touch=True)
    context = browser.new_context(**options)
    page = context.new_page()
    try:
        sign_in(page, admin.username)
        page.wait_for_url(re.compile(re.escape(live_server.url) + r"/(\?.*)?$"))
        page.goto("/vendors/")
        errors = page.locator("#vendor-file-errors")
        assert "acme-with-a-rather-long-file-name.yaml" in errors.inner_text()
        assert "line 5" in errors.inner_text() and "auth.scheme" in errors.inner_text()
        assert "did you mean max_attempts?" in errors.inner_text()
        github = page.locator("#vendor-github").inner_text()
        assert "github.yaml" in github and "api.github.com" in github and "declarative" in github
        assert "built-in" in page.locator("#vendor-clever").inner_text()
        assert not page.evaluate(MEASURE, [size == "phone", SIZES[size]["width"]])
        take_screenshot(page, f"vendors-{size}-list")

        page.get_by_role("link", name="Add or replace a vendor").click()
        page.get_by_label("Or paste the YAML").fill(BROKEN)
        page.get_by_role("button", name="Check").click()
        problems = page.locator("#definition-problems")
        assert "nothing was saved" in problems.inner_text() and "line 10, rate_limit.limits.scope" in problems.inner_text()
        assert not page.evaluate(MEASURE, [size == "phone", SIZES[size]["width"]])
        take_screenshot(page, f"vendors-{size}-upload-problems")

        page.get_by_label("Or paste the YAML").fill(STRIPE_BASIC)
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r"/vendors/$"))
        assert "Vendor stripe-basic added" in page.locator("main").inner_text()
        assert "stripe-basic.yaml" in page.locator("#vendor-stripe-basic").inner_text()
        assert (folder / "stripe-basic.yaml").exists()
    finally:
        context.close()


def test_a_file_checked_is_saved_by_save_without_choosing_it_again(page, live_server, folder, tmp_path_factory):
    """Found clicking through `make run`: choose a file, press Check, read "The definition is
    valid. Press Save to add it.", press Save: the page said "Choose a file or paste a
    definition", because a browser never sends a file input again. The checked text now stays in
    the paste box, so Save sends it."""
    upload = tmp_path_factory.mktemp("upload") / "stripe-basic.yaml"
    upload.write_text(STRIPE_BASIC)
    sign_in(page, factories.user("admin").username)
    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/(\?.*)?$"))
    page.goto("/vendors/upload/")
    page.get_by_label("Definition file (.yaml)").set_input_files(str(upload))
    page.get_by_role("button", name="Check").click()
    assert "The definition is valid. Press Save" in page.locator("#definition-ok").inner_text()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/vendors/$"))
    assert "Vendor stripe-basic added" in page.locator("main").inner_text()
    assert (folder / "stripe-basic.yaml").read_text() == STRIPE_BASIC
