"""Issue 12: webhook delivery errors used to be the library's text, which carries the webhook's
URL (a Slack webhook's path is its token). Replace the stored texts of webhook deliveries; new
errors are written in safe words (connections/outbound/transport.py)."""

from django.db import migrations

REPLACEMENT = "(the earlier error text was removed: it could show the webhook's URL)"


def scrub(apps, schema_editor):
    AlertDelivery = apps.get_model("connections", "AlertDelivery")
    AlertDelivery.objects.filter(channel__kind="webhook").exclude(last_error="").update(last_error=REPLACEMENT)


class Migration(migrations.Migration):
    dependencies = [("connections", "0007_shared_state")]
    operations = [migrations.RunPython(scrub, migrations.RunPython.noop)]
