"""The second factor (TOTP, django-otp): enrol, confirm, recovery codes, remove, reset.

A user has at most one TOTP device and one static device (ten one-time recovery codes). The
TOTP secret is shown while the device is unconfirmed (the enrolment page: QR code and text) and
never again; recovery codes are shown once, when they are made. Neither reaches the audit log,
nor the database in plain text: the seed is sealed with CREDENTIAL_KEYS in a SecondFactorSeal
(django-otp's TOTPDevice.key holds a placeholder; codes are checked through SealedTOTPDevice), and
a recovery code is stored as its keyed hash (crypto.recovery_code_digest). docs/security.md.
Who must have a second factor is dashboard/twofactor.py's business (admins, when
SECOND_FACTOR_FOR_ADMINS is on).
"""

from __future__ import annotations

import os

from django.contrib.auth.models import User
from django.db import transaction
from django_otp import devices_for_user, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ..crypto import encrypt_bytes, recovery_code_digest
from ..models import SealedTOTPDevice, SecondFactorSeal
from ..models.access import UNSEALED_KEY_PLACEHOLDER
from .audit import Actor, audit

RECOVERY_CODES = 10
DEVICE_NAME = "authenticator app"
SEED_BYTES = 20  # django-otp's default (160 bits, as RFC 4226 recommends)


def has_second_factor(user: User) -> bool:
    return user.is_authenticated and user_has_device(user, confirmed=True)


def _new_totp(user: User) -> SealedTOTPDevice:
    """The only way a TOTP device is made: the seed is generated here, sealed, and never written to
    TOTPDevice.key."""
    seed = os.urandom(SEED_BYTES)
    with transaction.atomic():
        device = SealedTOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False,
                                                 key=UNSEALED_KEY_PLACEHOLDER)
        device.seal = SecondFactorSeal.objects.create(device=device, sealed=encrypt_bytes(seed))
    return device


def pending_totp(*, user: User) -> SealedTOTPDevice:
    """The unconfirmed TOTP device being enrolled (made on first use; the same one until confirmed,
    so reloading the page does not change the QR code someone has half scanned)."""
    device = (SealedTOTPDevice.objects.filter(user=user, confirmed=False, seal__isnull=False)
              .select_related("seal").order_by("id").first())
    return device or _new_totp(user)


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=static, token=recovery_code_digest(code)) for code in codes])
    return codes


def totp_confirm(*, user: User, device: SealedTOTPDevice, code: str, actor: Actor) -> list[str] | None:
    """Confirm enrolment with a code from the app: the device becomes the user's second factor and
    ten recovery codes are returned (to show once). None when the code is wrong (nothing changed)."""
    code = (code or "").strip().replace(" ", "")
    if device.user_id != user.pk or device.confirmed or not code.isdigit() or not device.verify_token(code):
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(user)
        audit(actor=actor, action="user.second_factor_enrol", details={"user": user.username})
    return codes


def recovery_codes_renew(*, user: User, actor: Actor) -> list[str]:
    """Replace the recovery codes (the old ones stop working at once)."""
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        audit(actor=actor, action="user.recovery_codes", details={"user": user.username})
    return codes


def second_factor_remove(*, user: User, actor: Actor) -> bool:
    """Remove every device of the user (their own choice on the Security page, or an admin's reset
    from the CLI when a phone is lost). False when there was none."""
    with transaction.atomic():
        devices = list(devices_for_user(user, confirmed=None))
        if not devices:
            return False
        for device in devices:
            device.delete()
        action = "user.second_factor_remove" if actor.user is not None and actor.user.pk == user.pk \
            else "user.second_factor_reset"
        audit(actor=actor, action=action, details={"user": user.username})
    return True


def wait_seconds(*, user: User) -> int:
    """Seconds until django-otp lets this user try a code again after wrong ones (0: now)."""
    from django.utils import timezone

    waits = [0]
    for device in devices_for_user(user, confirmed=True):
        allowed, info = device.verify_is_allowed()
        if not allowed and info and info.get("locked_until"):
            waits.append(int((info["locked_until"] - timezone.now()).total_seconds()) + 1)
    return max(waits)


def verify_code(*, user: User, code: str):
    """The confirmed device that accepts this code (TOTP or a recovery code, which is then used
    up), or None. django-otp throttles each device after failures."""
    code = (code or "").strip().replace(" ", "").lower()
    if not code or len(code) > 16:
        return None
    # Six digits are the app's; anything else can only be a recovery code (trying it on the TOTP
    # device too would count a failure there and slow the next real code down). A recovery code is
    # stored as its keyed hash, so the hash of what was typed is what django-otp looks up.
    if code.isdigit() and len(code) == 6:
        devices = SealedTOTPDevice.objects.devices_for_user(user, confirmed=True).filter(seal__isnull=False)
    else:
        devices, code = StaticDevice.objects.devices_for_user(user, confirmed=True), recovery_code_digest(code)
    with transaction.atomic():
        for device in devices.select_for_update(of=("self",)):
            if device.verify_token(code):
                return device
    return None
