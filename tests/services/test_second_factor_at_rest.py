"""The second factor's secrets are not in the database in plain text, in any encoding: the TOTP seed
is sealed with CREDENTIAL_KEYS (django-otp's TOTPDevice.key holds a placeholder), recovery codes
are stored as keyed hashes; and migration 0018 does the same to devices made before it."""

from __future__ import annotations

import base64
import importlib
import re
import time
from binascii import hexlify

import pytest
from django.apps import apps
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from connections.models import SealedTOTPDevice, SecondFactorSeal
from connections.services import second_factor as sf
from tests import factories
from tests.test_stored_text_sweep import base64_cores, database_texts, needles, stored_texts

pytestmark = [pytest.mark.services, pytest.mark.django_db]
MIGRATION = importlib.import_module("connections.migrations.0018_second_factor_sealed")


@pytest.fixture(autouse=True)
def _no_throttle(settings):
    settings.SECOND_FACTOR_FOR_ADMINS = True
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0


def totp_code(seed: bytes, step_offset: int = 0) -> str:
    totp = TOTP(seed)
    totp.time = time.time() + 30 * step_offset
    return f"{totp.token():06d}"


def seed_needles(seed: bytes) -> dict[str, str]:
    """The raw seed in hex, base32 and base64 (every alignment), and the base32 text the user saw in
    every spelling the stored-text sweep knows."""
    found = {"hex": seed.hex(), "base32": base64.b32encode(seed).decode().rstrip("=").lower()} | base64_cores(seed)
    found |= {f"base32 text {k}": v for k, v in needles(found["base32"].upper()).items()}
    return found


def test_enrolment_leaves_neither_the_seed_nor_a_recovery_code_anywhere_in_the_database():
    admin = factories.user("admin")
    client = Client()
    assert client.post("/accounts/login/", {"username": admin.username, "password": factories.PASSWORD}).status_code == 302
    page = client.get("/accounts/security/").content.decode()
    shown = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    seed = base64.b32decode(shown + "=" * (-len(shown) % 8))
    answer = client.post("/accounts/security/", {"code": totp_code(seed)})
    codes = re.findall(r"<li>([a-z2-7]{8})</li>", answer.content.decode())
    assert answer.status_code == 200 and len(codes) == 10
    assert TOTPDevice.objects.get(user=admin).key == "sealed"

    texts = database_texts() | {k: v for k, v in stored_texts().items() if k.startswith("cache ")}
    assert any(name.startswith("otp_totp_totpdevice") for name in texts)
    assert any(name.startswith("connections_secondfactorseal") for name in texts)
    assert sum(name.startswith("otp_static_statictoken") for name in texts) == 10
    secrets = {"the seed": seed_needles(seed)} | {f"recovery code {c[:2]}…": needles(c) for c in codes}
    hits = [f"{where}: {form} of {what}" for what, forms in secrets.items() for form, needle in forms.items()
            for where, text in texts.items() if needle in text.lower()]
    assert not hits, "\n".join(hits[:40])

    # Still what the user sees: the app's code signs in, a recovery code works once, "N left".
    again = Client()
    again.post("/accounts/login/", {"username": admin.username, "password": factories.PASSWORD})
    assert again.post("/accounts/two-factor/", {"code": totp_code(seed, 1)}).status_code == 302
    assert again.get("/connections/").status_code == 200  # the verified session holds (its device's label)
    third = Client()
    third.post("/accounts/login/", {"username": admin.username, "password": factories.PASSWORD})
    assert third.post("/accounts/two-factor/", {"code": codes[3].upper()}).status_code == 302
    assert "9 of 10 recovery codes left" in third.get("/accounts/security/").content.decode()
    fourth = Client()
    fourth.post("/accounts/login/", {"username": admin.username, "password": factories.PASSWORD})
    assert fourth.post("/accounts/two-factor/", {"code": codes[3]}).status_code == 422


def test_a_device_loaded_as_plain_django_otp_cannot_check_codes_against_a_known_key():
    admin = factories.user("admin")
    device = sf.pending_totp(user=admin)
    with pytest.raises(ValueError):  # binascii.Error: the placeholder is not a key
        TOTPDevice.objects.get(pk=device.pk).verify_token("123456")
    assert len(device.bin_key) == sf.SEED_BYTES and sf.pending_totp(user=admin).bin_key == device.bin_key


def test_the_migration_seals_an_existing_plain_device_and_hashes_its_recovery_codes():
    viewer = factories.user("viewer")
    seed = bytes(range(1, 21))
    plain = TOTPDevice.objects.create(user=viewer, name="authenticator app", confirmed=True, key=hexlify(seed).decode())
    static = StaticDevice.objects.create(user=viewer, name="recovery codes", confirmed=True)
    StaticToken.objects.bulk_create([StaticToken(device=static, token=t) for t in ("abcd2345", "efgh6777")])

    MIGRATION.seal_seeds(apps, None)
    MIGRATION.hash_recovery_codes(apps, None)
    MIGRATION.seal_seeds(apps, None)  # twice is harmless (a deploy that retried)
    MIGRATION.hash_recovery_codes(apps, None)

    plain.refresh_from_db()
    assert plain.key == "sealed" and SecondFactorSeal.objects.filter(device=plain).count() == 1
    assert SealedTOTPDevice.objects.get(pk=plain.pk).bin_key == seed
    tokens = list(StaticToken.objects.filter(device=static).values_list("token", flat=True))
    assert len(tokens) == 2 and not {"abcd2345", "efgh6777"} & set(tokens) and all(len(t) == 16 for t in tokens)
    texts = database_texts()
    assert not [w for w, t in texts.items() for n in seed_needles(seed).values() if n in t.lower()]

    assert isinstance(sf.verify_code(user=viewer, code=totp_code(seed)), SealedTOTPDevice)
    assert isinstance(sf.verify_code(user=viewer, code="ABCD 2345"), StaticDevice)
    assert sf.verify_code(user=viewer, code="abcd2345") is None  # used once
    assert StaticToken.objects.filter(device=static).count() == 1

    MIGRATION.unseal_seeds(apps, None)  # reversing puts the seed back where django-otp keeps it
    plain.refresh_from_db()
    assert plain.bin_key == seed


def test_rotate_keys_re_encrypts_the_sealed_seeds_too():
    import io

    from django.core.management import call_command
    from django.test import override_settings

    from tests.services.test_vault import NEW_KEY, OLD_KEY

    def rotate_keys(*args) -> tuple[int, str]:
        out = io.StringIO()
        try:
            call_command("rotate_keys", *args, stdout=out, stderr=out)
        except SystemExit as exc:
            return exc.code, out.getvalue()
        return 0, out.getvalue()

    operator = factories.user("operator", username="seal-rotation")
    with override_settings(CREDENTIAL_KEYS=[OLD_KEY]):
        seed = sf.pending_totp(user=operator).bin_key
    with override_settings(CREDENTIAL_KEYS=[NEW_KEY]):
        code, out = rotate_keys("--check")
        assert code == 1 and "second factor (TOTP app) of user seal-rotation" in out and "cannot be decrypted" in out
    with override_settings(CREDENTIAL_KEYS=[NEW_KEY, OLD_KEY]):
        code, out = rotate_keys("--check")
        assert code == 1 and "1 secret(s) still depend on an older key" in out and "seal-rotation" in out
        assert rotate_keys() == (0, "Re-encrypted 1 secret(s) with the newest key.\n")
    with override_settings(CREDENTIAL_KEYS=[NEW_KEY]):
        assert rotate_keys("--check")[0] == 0
        assert SealedTOTPDevice.objects.get(user=operator).bin_key == seed
