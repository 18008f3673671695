"""The second factor's secrets leave the database's plain text (docs/security.md).

Each TOTP device's seed moves from django-otp's TOTPDevice.key (plain hex) into a SecondFactorSeal,
encrypted with CREDENTIAL_KEYS; the key column then holds a non-secret placeholder. Each recovery
code (django-otp's StaticToken.token, plain) is replaced by its keyed hash (16 characters; codes
shorter than that are plain ones: django-otp makes 8).

Reversing puts each seed back into TOTPDevice.key (decrypted, so CREDENTIAL_KEYS must still read
it). The recovery codes cannot be un-hashed: after reversing, the existing ones no longer work and
each user makes new ones on the Security page (their authenticator app still works).
"""

from binascii import hexlify, unhexlify

import django.db.models.deletion
from django.db import migrations, models

PLACEHOLDER = "sealed"  # connections.models.access.UNSEALED_KEY_PLACEHOLDER, as of this migration
DIGEST_LENGTH = 16


def seal_seeds(apps, schema_editor):
    from connections.crypto import encrypt_bytes

    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    SecondFactorSeal = apps.get_model("connections", "SecondFactorSeal")
    for device in TOTPDevice.objects.exclude(key=PLACEHOLDER).iterator():
        SecondFactorSeal.objects.update_or_create(device_id=device.pk,
                                                  defaults={"sealed": encrypt_bytes(unhexlify(device.key))})
        TOTPDevice.objects.filter(pk=device.pk).update(key=PLACEHOLDER)


def unseal_seeds(apps, schema_editor):
    from connections.crypto import decrypt_bytes

    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    SecondFactorSeal = apps.get_model("connections", "SecondFactorSeal")
    for seal in SecondFactorSeal.objects.iterator():
        TOTPDevice.objects.filter(pk=seal.device_id).update(key=hexlify(decrypt_bytes(seal.sealed)).decode())


def hash_recovery_codes(apps, schema_editor):
    from connections.crypto import recovery_code_digest

    StaticToken = apps.get_model("otp_static", "StaticToken")
    for token in StaticToken.objects.all().iterator():
        if len(token.token) < DIGEST_LENGTH:
            StaticToken.objects.filter(pk=token.pk).update(token=recovery_code_digest(token.token))


class Migration(migrations.Migration):

    dependencies = [
        ('connections', '0017_requestlog_partitions'),
        ('otp_totp', '0003_add_timestamps'),
        ('otp_static', '0003_add_timestamps'),
    ]

    operations = [
        migrations.CreateModel(
            name='SecondFactorSeal',
            fields=[
                ('device', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='seal', serialize=False, to='otp_totp.totpdevice')),
                ('sealed', models.TextField()),
            ],
        ),
        migrations.CreateModel(
            name='SealedTOTPDevice',
            fields=[
            ],
            options={
                'verbose_name': 'TOTP device (sealed seed)',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('otp_totp.totpdevice',),
        ),
        migrations.RunPython(seal_seeds, unseal_seeds),
        migrations.RunPython(hash_recovery_codes, migrations.RunPython.noop),  # cannot be un-hashed: see above
    ]
