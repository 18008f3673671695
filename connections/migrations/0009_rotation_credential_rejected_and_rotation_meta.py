"""Credential state `rejected` (a pasted secret the vendor refused; it was never active), and each
credential's rotation mode in its non-secret meta (pages decide "Rotate now" without decrypting).

The backfill decrypts each credential once, here, with the keys in CREDENTIAL_KEYS; a credential
that cannot be decrypted keeps no mode (pages then offer only "paste a new secret"). Staged
secrets that failed verification were stored as `retired`; their journal rows tell them apart.
"""

from django.db import migrations, models


def backfill(apps, schema_editor):
    from connections.crypto import SecretUnavailable
    from connections.providers.registry import get_provider

    Credential = apps.get_model("connections", "Credential")
    RotationAttempt = apps.get_model("connections", "RotationAttempt")
    refused = RotationAttempt.objects.filter(kind="staged", state="failed", step="verify_failed")
    Credential.objects.filter(state="retired", pk__in=refused.values("new_credential_id")).update(state="rejected")
    for row in Credential.objects.select_related("connection").only("secret", "meta", "connection__provider"):
        try:
            meta = get_provider(row.connection.provider).credential_meta(row.secret.reveal())
        except (SecretUnavailable, KeyError, ValueError, TypeError, AttributeError):
            continue
        Credential.objects.filter(pk=row.pk).update(meta={**(row.meta or {}), **meta})


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0008_egress_scrub_webhook_errors"),
    ]

    operations = [
        migrations.AlterField(
            model_name="credential",
            name="state",
            field=models.CharField(
                choices=[("staged", "Staged"), ("active", "Active"), ("retired", "Retired"),
                         ("rescinded", "Rescinded"), ("rejected", "Rejected")],
                default="staged", max_length=10),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
