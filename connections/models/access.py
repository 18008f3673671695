"""Who else gets in: applications through the egress proxy (their keys), users who sign in with
single sign-on (their identity at the identity provider), and the sealed seed of a user's second
factor (their authenticator app's secret, encrypted at rest)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from ..crypto import decrypt_bytes
from .core import Connection

# ----------------------------------------------------------------------------- the egress proxy


class ApplicationKey(models.Model):
    """An application's key for /proxy/<connection>/<path> (connections/proxy/). The key itself is
    shown once; only its SHA-256 and its public prefix (`sbk_` + key id) are stored."""

    name = models.SlugField(max_length=64, unique=True)
    key_id = models.CharField(max_length=16, unique=True)  # public part of the key, after "sbk_"
    key_hash = models.CharField(max_length=64)  # hex SHA-256 of the whole key
    connections = models.ManyToManyField(Connection, related_name="application_keys", blank=True)
    methods = models.JSONField(default=list, blank=True)  # upper-case methods; empty: any method
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_by_label = models.CharField(max_length=150, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)  # to the minute (services/appkeys.py)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def prefix(self) -> str:
        """What identifies the key without revealing it (shown on pages, in the CLI and the log)."""
        return f"sbk_{self.key_id}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ExternalIdentity(models.Model):
    """A user who signs in with single sign-on (dashboard/sso.py), by the identity provider's
    issuer and subject: never by user name, so an IdP account cannot take over a local one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities")
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="one_user_per_external_identity")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.issuer} {self.subject}"


# ----------------------------------------------------------------------------- the second factor

# What django-otp's own TOTPDevice.key holds once the seed is sealed: not a secret, and not hex, so a
# device loaded as a plain TOTPDevice (not SealedTOTPDevice) fails loudly instead of checking codes
# against a key everyone knows.
UNSEALED_KEY_PLACEHOLDER = "sealed"


class SecondFactorSeal(models.Model):
    """A TOTP device's seed, encrypted with CREDENTIAL_KEYS (connections/crypto.py): django-otp
    keeps it in TOTPDevice.key as plain hex; Switchboard keeps it here (services/second_factor.py)."""

    device = models.OneToOneField(TOTPDevice, on_delete=models.CASCADE, primary_key=True, related_name="seal")
    sealed = models.TextField()  # a Fernet token of the raw seed bytes

    def __str__(self) -> str:
        return f"seal of TOTP device {self.device_id}"


class SealedTOTPDevice(TOTPDevice):
    """django-otp's TOTP device whose seed comes from its SecondFactorSeal. Verify codes and render
    the QR code only through this model; its persistent id (connections.sealedtotpdevice/<id>) is
    what a verified session keeps, so OTPMiddleware loads this class again."""

    class Meta:
        proxy = True
        verbose_name = "TOTP device (sealed seed)"

    @property
    def bin_key(self) -> bytes:
        return decrypt_bytes(self.seal.sealed)
